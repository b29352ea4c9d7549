package crm

import (
	"slices"
	"strings"
)

// Field limits, generous like a legacy schema's VARCHAR sizes.
const (
	maxNameLen  = 200
	maxEmailLen = 254 // RFC 5321 §4.5.3.1.3 path limit, less the brackets
	maxPhoneLen = 40
	maxNotesLen = 10_000
)

// validate returns a message per invalid field, or nil. On create the owner
// is required (createContact defaults it to the signed-in user first); on update
// an empty owner keeps the current one.
func (s *Server) validate(in contactInput, creating bool) map[string]string {
	fields := map[string]string{}
	switch {
	case strings.TrimSpace(in.Name) == "":
		fields["name"] = "is required"
	case len(in.Name) > maxNameLen:
		fields["name"] = "is too long"
	}
	switch {
	case in.Email == "":
		fields["email"] = "is required"
	case len(in.Email) > maxEmailLen || !plausibleEmail(in.Email):
		fields["email"] = "is not a valid email address"
	}
	if len(in.Phone) > maxPhoneLen || strings.Trim(in.Phone, "0123456789 +-().") != "" {
		fields["phone"] = "is not a valid phone number"
	}
	if len(in.Company) > maxNameLen {
		fields["company"] = "is too long"
	}
	switch {
	case in.Owner == "" && creating:
		fields["owner"] = "is required"
	case in.Owner != "" && !s.isUser(in.Owner):
		fields["owner"] = "is not a CRM user"
	}
	if in.SSN != "" && !validSSN(in.SSN) {
		fields["ssn"] = "must look like 123-45-6789"
	}
	if in.CreditCard != "" && (len(in.CreditCard) < 13 || len(in.CreditCard) > 19 || !luhnValid(in.CreditCard)) {
		fields["credit_card"] = "must be 13 to 19 digits passing the Luhn check"
	}
	if len(in.Notes) > maxNotesLen {
		fields["notes"] = "is too long"
	}
	if len(fields) == 0 {
		return nil
	}
	return fields
}

// isUser reports whether name is one of the CRM's user accounts.
func (s *Server) isUser(name string) bool {
	return slices.ContainsFunc(s.users, func(u AdminUser) bool { return u.Username == name })
}

// plausibleEmail is the legacy-grade check: one @, something on each side,
// a dot in the domain, no whitespace. Deliverability is not its business.
func plausibleEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") &&
		!strings.ContainsAny(domain, "@") && !strings.ContainsAny(s, " \t\r\n") &&
		!strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// validSSN reports whether s is formatted ddd-dd-dddd.
func validSSN(s string) bool {
	if len(s) != 11 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 3 || i == 6 {
			if s[i] != '-' {
				return false
			}
		} else if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
