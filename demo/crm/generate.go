package crm

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// epochUnix anchors generated timestamps (2019-01-01T00:00:00Z) so the data
// depends only on the seed, never on when the server started.
const epochUnix = 1546300800

// PCG streams, one per record kind. Each record is generated from its own
// (seed, stream|index) state, so record i never depends on records before it:
// that is what lets the export produce item 4,999,999 without producing the
// others, and keeps seeded contacts identical to the export's first items.
const (
	streamContacts uint64 = iota << 60
	streamDeals
	streamInvoices
	streamUsers
)

// generator produces deterministic records. It is not safe for concurrent
// use; each export stream owns one.
type generator struct {
	seed uint64
	src  *rand.PCG
	rng  *rand.Rand
}

func newGenerator(seed int64) *generator {
	src := rand.NewPCG(0, 0)
	return &generator{seed: uint64(seed), src: src, rng: rand.New(src)}
}

// at positions the generator on record index of a stream.
func (g *generator) at(stream uint64, index int) *rand.Rand {
	g.src.Seed(g.seed, stream|uint64(index))
	return g.rng
}

// contact returns the contact with zero-based index i; its ID is i+1.
func (g *generator) contact(i int) Contact {
	r := g.at(streamContacts, i)
	first := firstNames[r.IntN(len(firstNames))]
	last := lastNames[r.IntN(len(lastNames))]
	stem := companyStems[r.IntN(len(companyStems))]
	created := time.Unix(epochUnix+r.Int64N(5*365*24*3600), 0).UTC()
	c := Contact{
		ID:         i + 1,
		Name:       first + " " + last,
		Email:      emailLocal(first) + "." + emailLocal(last) + "@" + emailLocal(stem) + ".example",
		Phone:      phone(r),
		Company:    stem + " " + companySuffixes[r.IntN(len(companySuffixes))],
		Owner:      owner(r),
		SSN:        ssn(r),
		CreditCard: creditCard(r),
		Notes:      notePhrases[r.IntN(len(notePhrases))],
		CreatedAt:  created,
		UpdatedAt:  created.Add(time.Duration(r.Int64N(400*24*3600)) * time.Second),
	}
	if r.IntN(3) == 0 {
		c.Notes += " " + notePhrases[r.IntN(len(notePhrases))]
	}
	return c
}

// deal returns the deal with zero-based index i, attached to one of
// contacts and owned by that contact's owner.
func (g *generator) deal(i int, contacts []Contact) Deal {
	r := g.at(streamDeals, i)
	c := contacts[r.IntN(len(contacts))]
	company := c.Company
	if j := strings.LastIndexByte(company, ' '); j > 0 {
		company = company[:j] // drop the legal suffix: "Globex GmbH" -> "Globex"
	}
	return Deal{
		ID:        i + 1,
		ContactID: c.ID,
		Title:     company + " - " + dealProducts[r.IntN(len(dealProducts))],
		Amount:    50_000 + r.Int64N(5_000_000),
		Currency:  currencies[r.IntN(len(currencies))],
		Stage:     dealStages[r.IntN(len(dealStages))],
		Owner:     c.Owner,
	}
}

// invoice returns the invoice with zero-based index i for one of contacts.
func (g *generator) invoice(i int, contacts []Contact) Invoice {
	r := g.at(streamInvoices, i)
	c := contacts[r.IntN(len(contacts))]
	due := time.Unix(epochUnix+r.Int64N(6*365*24*3600), 0).UTC()
	return Invoice{
		ID:        i + 1,
		ContactID: c.ID,
		Number:    "INV-" + strconv.Itoa(due.Year()) + "-" + zeroPad(i+1, 6),
		Amount:    10_000 + r.Int64N(2_000_000),
		Currency:  currencies[r.IntN(len(currencies))],
		Status:    invoiceStatuses[r.IntN(len(invoiceStatuses))],
		DueDate:   due.Format(time.DateOnly),
		IBAN:      iban(r),
	}
}

// adminUsers returns the CRM's user accounts: the demo users, with roles
// that match the demo identity provider's groups.
func (g *generator) adminUsers() []AdminUser {
	roles := [len(demoUsers)][]string{
		{"sales"},
		{"sales", "manager"},
		{"support", "auditor"},
		{"admin", "sales"},
	}
	users := make([]AdminUser, len(demoUsers))
	for i, name := range demoUsers {
		r := g.at(streamUsers, i)
		users[i] = AdminUser{
			Username:  name,
			Roles:     roles[i],
			Email:     name + "@acme-crm.example",
			LastLogin: time.Unix(epochUnix+6*365*24*3600+r.Int64N(60*24*3600), 0).UTC(),
		}
	}
	return users
}

func owner(r *rand.Rand) string {
	total := 0
	for _, w := range ownerWeights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range ownerWeights {
		if n < w {
			return demoUsers[i]
		}
		n -= w
	}
	return demoUsers[0]
}

// emailLocal lower-cases s and keeps only letters, so "O'Brien" and
// "Massive Dynamic" become valid address parts.
func emailLocal(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			b = append(b, c)
		case 'A' <= c && c <= 'Z':
			b = append(b, c+'a'-'A')
		}
	}
	return string(b)
}

// phone returns a North American number in the 555 range reserved for
// fiction, e.g. "+1-415-555-0142".
func phone(r *rand.Rand) string {
	return "+1-" + strconv.Itoa(200+r.IntN(800)) + "-555-" + zeroPad(r.IntN(10000), 4)
}

// ssn returns a well-formed SSN: area 001-899 except 666, group 01-99,
// serial 0001-9999.
func ssn(r *rand.Rand) string {
	area := 1 + r.IntN(898)
	if area == 666 {
		area = 667
	}
	return zeroPad(area, 3) + "-" + zeroPad(1+r.IntN(99), 2) + "-" + zeroPad(1+r.IntN(9999), 4)
}

// creditCard returns a 16-digit Visa or Mastercard number with a valid Luhn
// check digit, so redaction rules that verify Luhn fire on it.
func creditCard(r *rand.Rand) string {
	var d [16]byte
	if r.IntN(2) == 0 {
		d[0] = '4'
		d[1] = byte('0' + r.IntN(10))
	} else {
		d[0] = '5'
		d[1] = byte('1' + r.IntN(5))
	}
	for i := 2; i < 15; i++ {
		d[i] = byte('0' + r.IntN(10))
	}
	d[15] = luhnCheckDigit(d[:15])
	return string(d[:])
}

// luhnCheckDigit returns the digit that makes payload+digit pass the Luhn
// check (ISO/IEC 7812-1 Annex B).
func luhnCheckDigit(payload []byte) byte {
	sum := 0
	double := true // the rightmost payload digit sits next to the check digit
	for i := len(payload) - 1; i >= 0; i-- {
		n := int(payload[i] - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// luhnValid reports whether s is all digits and passes the Luhn check.
func luhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return luhnCheckDigit([]byte(s[:len(s)-1])) == s[len(s)-1]
}

// iban returns a German IBAN (8-digit bank code, 10-digit account) with
// ISO 13616 mod-97 check digits.
func iban(r *rand.Rand) string {
	var bban [18]byte
	for i := range bban {
		bban[i] = byte('0' + r.IntN(10))
	}
	// Check digits: BBAN followed by the country code as digits (D=13, E=14)
	// and "00", mod 97, subtracted from 98.
	check := 98 - mod97(string(bban[:])+"131400")
	return "DE" + zeroPad(check, 2) + string(bban[:])
}

// ibanValid reports whether s has valid IBAN check digits (ISO 13616).
func ibanValid(s string) bool {
	if len(s) < 5 {
		return false
	}
	var b strings.Builder
	for _, c := range s[4:] + s[:4] {
		switch {
		case '0' <= c && c <= '9':
			b.WriteRune(c)
		case 'A' <= c && c <= 'Z':
			b.WriteString(strconv.Itoa(int(c-'A') + 10))
		default:
			return false
		}
	}
	return mod97(b.String()) == 1
}

// mod97 returns the decimal number in digits modulo 97, one digit at a time
// so it never overflows.
func mod97(digits string) int {
	m := 0
	for i := 0; i < len(digits); i++ {
		m = (m*10 + int(digits[i]-'0')) % 97
	}
	return m
}

// zeroPad formats n with at least width digits.
func zeroPad(n, width int) string {
	s := strconv.Itoa(n)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
