package crm

import "time"

// Contact is a person in the CRM, with the sensitive fields a legacy CRM
// typically stores in clear text and returns to anyone who asks.
type Contact struct {
	// ID is assigned by the CRM, counting from 1; ids are never reused.
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Phone   string `json:"phone"`
	Company string `json:"company"`
	// Owner is the demo user (alice, bob, carol or dave) who owns the
	// contact; the gateway's owner filtering keys on it.
	Owner string `json:"owner"`
	// SSN is a US social security number formatted "123-45-6789".
	SSN string `json:"ssn"`
	// CreditCard is a card number passing the Luhn check: 16 digits when
	// seeded, 13 to 19 when written through the API.
	CreditCard string `json:"credit_card"`
	// Notes is free text, stored and returned as written, unsanitised.
	Notes string `json:"notes"`
	// CreatedAt and UpdatedAt are UTC with second precision, so they
	// render as RFC 3339 without fractions.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Deal is a sales opportunity attached to a contact.
type Deal struct {
	ID int `json:"id"`
	// ContactID is the [Contact.ID] of a seeded contact.
	ContactID int    `json:"contact_id"`
	Title     string `json:"title"`
	// Amount is in the currency's minor unit (cents).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Stage is one of lead, qualified, proposal, negotiation, won, lost.
	Stage string `json:"stage"`
	// Owner is the owner of the deal's contact.
	Owner string `json:"owner"`
}

// Invoice is a bill sent to a contact.
type Invoice struct {
	ID        int    `json:"id"`
	ContactID int    `json:"contact_id"`
	Number    string `json:"number"`
	// Amount is in the currency's minor unit (cents).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Status is one of draft, sent, paid, overdue.
	Status string `json:"status"`
	// DueDate is a calendar date, "2006-01-02".
	DueDate string `json:"due_date"`
	// IBAN is a German IBAN with valid ISO 13616 check digits.
	IBAN string `json:"iban"`
}

// AdminUser is a CRM user account as the admin screen lists it.
type AdminUser struct {
	Username string `json:"username"`
	// Roles mirror the demo identity provider's groups for the user.
	Roles     []string  `json:"roles"`
	Email     string    `json:"email"`
	LastLogin time.Time `json:"last_login"`
}
