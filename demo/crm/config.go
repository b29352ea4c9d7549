package crm

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultContacts       = 200
	DefaultIdentityHeader = "X-CRM-User"
	DefaultRolesHeader    = "X-CRM-Roles"
)

// maxContacts bounds the seeded data set, which is held in memory; larger
// volumes belong to the streaming export, which holds nothing.
const maxContacts = 1_000_000

// Config configures a [Server]. The zero value is usable: 200 contacts
// seeded from seed 0, identity in X-CRM-User and roles in X-CRM-Roles.
type Config struct {
	// Contacts is the number of contacts seeded at start-up; zero means
	// [DefaultContacts].
	Contacts int
	// Seed makes every generated record deterministic: two servers with the
	// same Seed and Contacts serve identical data.
	Seed int64
	// IdentityHeader names the request header carrying the signed-in user,
	// as set by the gateway; empty means [DefaultIdentityHeader].
	IdentityHeader string
	// RolesHeader names the request header carrying the user's roles
	// (comma-separated), as set by the gateway; empty means
	// [DefaultRolesHeader].
	RolesHeader string
}

// Validate reports every problem with c at once. A zero field is valid
// because [New] replaces it with its default.
func (c Config) Validate() error {
	var errs []error
	if c.Contacts < 0 || c.Contacts > maxContacts {
		errs = append(errs, fmt.Errorf("crm: contacts must be between 0 and %d, got %d", maxContacts, c.Contacts))
	}
	if c.IdentityHeader != "" && !isToken(c.IdentityHeader) {
		errs = append(errs, fmt.Errorf("crm: identity_header %q is not a valid header name", c.IdentityHeader))
	}
	if c.RolesHeader != "" && !isToken(c.RolesHeader) {
		errs = append(errs, fmt.Errorf("crm: roles_header %q is not a valid header name", c.RolesHeader))
	}
	if c.IdentityHeader != "" && strings.EqualFold(c.IdentityHeader, c.RolesHeader) {
		errs = append(errs, errors.New("crm: identity_header and roles_header must differ"))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields replaced by their defaults.
// Because New cannot fail, fields Validate would reject are also replaced
// (or clamped) rather than trusted.
func (c Config) withDefaults() Config {
	switch {
	case c.Contacts <= 0:
		c.Contacts = DefaultContacts
	case c.Contacts > maxContacts:
		c.Contacts = maxContacts
	}
	if c.IdentityHeader == "" || !isToken(c.IdentityHeader) {
		c.IdentityHeader = DefaultIdentityHeader
	}
	if c.RolesHeader == "" || !isToken(c.RolesHeader) {
		c.RolesHeader = DefaultRolesHeader
	}
	return c
}

// isToken reports whether s is an RFC 9110 §5.6.2 token, the grammar of a
// header field name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
