package idp

import (
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Defaults applied by [New] to zero durations of [Config].
const (
	DefaultAccessTokenTTL  = 5 * time.Minute
	DefaultIDTokenTTL      = 5 * time.Minute
	DefaultRefreshTokenTTL = 8 * time.Hour
	DefaultSessionTTL      = 8 * time.Hour
)

// minKeyRotation bounds automatic rotation: every rotation keeps the retired
// public key in the JWKS for a token lifetime, so a tiny interval would only
// grow the key set.
const minKeyRotation = time.Minute

// minClientSecret is the shortest client secret accepted; secrets are compared
// by SHA-256 hash, which is only safe for high-entropy values.
const minClientSecret = 16

// Config configures a [Provider]. Zero durations take their defaults.
type Config struct {
	// Issuer is the provider's https URL, exactly as relying parties see it
	// (for example https://localhost:8444). It has no path, query or fragment:
	// the caller serves [Provider.Handler] at the root of that origin.
	Issuer string
	// Users are the accounts that can sign in.
	Users []User
	// Clients are the registered relying parties.
	Clients []Client
	// KeyRotation is the interval after which the signing key is replaced
	// automatically (checked when a token is signed); zero means keys rotate
	// only through [Provider.Rotate].
	KeyRotation time.Duration
	// AccessTokenTTL is the lifetime of (JWT) access tokens; zero means
	// [DefaultAccessTokenTTL].
	AccessTokenTTL time.Duration
	// IDTokenTTL is the lifetime of ID tokens; zero means [DefaultIDTokenTTL].
	IDTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token; every use
	// rotates it. Zero means [DefaultRefreshTokenTTL].
	RefreshTokenTTL time.Duration
	// SessionTTL is how long the single sign-on session lasts after the last
	// authentication; zero means [DefaultSessionTTL].
	SessionTTL time.Duration
	// BackChannelTransport carries back-channel logout requests to the
	// clients (it must trust their certificates); nil means
	// [http.DefaultTransport].
	BackChannelTransport http.RoundTripper
}

// User is an account of the provider. Its subject (sub claim) is Username.
type User struct {
	// Username is the login name and the OIDC subject.
	Username string `json:"username"`
	// PasswordHash is the bcrypt hash of the password.
	PasswordHash string `json:"password_hash"`
	// Email is asserted with the email scope (as verified).
	Email string `json:"email,omitempty"`
	// Roles are asserted in the roles claim of ID tokens, access tokens and
	// userinfo.
	Roles []string `json:"roles"`
	// TOTPSecret is the base32 RFC 6238 secret (SHA-1, 6 digits, 30 s) of
	// the user's second factor. The provider must read it to verify codes,
	// so it is stored as is.
	TOTPSecret string `json:"totp_secret"`
	// AlwaysMFA asks for the second factor at every login, whatever the
	// client requested.
	AlwaysMFA bool `json:"always_mfa,omitempty"`
}

// Client is a registered relying party.
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client secret; empty means a public client, which
	// authenticates with PKCE alone. The provider keeps only its hash.
	Secret string
	// RedirectURIs are the exact redirect_uri values the client may use.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// the client may use at the end_session endpoint.
	PostLogoutRedirectURIs []string
	// BackChannelLogoutURI receives a logout_token (OpenID Connect
	// Back-Channel Logout 1.0) when a session the client took part in ends;
	// empty means the client is not notified.
	BackChannelLogoutURI string
}

// withDefaults returns c with zero durations replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.AccessTokenTTL == 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.IDTokenTTL == 0 {
		c.IDTokenTTL = DefaultIDTokenTTL
	}
	if c.RefreshTokenTTL == 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	return c
}

// Validate reports every problem with c at once. Zero durations are valid
// because [New] replaces them with their defaults.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, validateIssuer(c.Issuer)...)
	for _, d := range []struct {
		name string
		d    time.Duration
	}{
		{"key_rotation", c.KeyRotation}, {"access_token_ttl", c.AccessTokenTTL}, {"id_token_ttl", c.IDTokenTTL},
		{"refresh_token_ttl", c.RefreshTokenTTL}, {"session_ttl", c.SessionTTL},
	} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("idp: %s must not be negative, got %s", d.name, d.d))
		}
	}
	if c.KeyRotation > 0 && c.KeyRotation < minKeyRotation {
		errs = append(errs, fmt.Errorf("idp: key_rotation must be at least %s, got %s", minKeyRotation, c.KeyRotation))
	}
	if len(c.Users) == 0 {
		errs = append(errs, errors.New("idp: no users"))
	}
	seen := make(map[string]bool)
	for i, u := range c.Users {
		errs = append(errs, u.validate(i)...)
		if seen[u.Username] {
			errs = append(errs, fmt.Errorf("idp: users[%d]: duplicate username %q", i, u.Username))
		}
		seen[u.Username] = true
	}
	if len(c.Clients) == 0 {
		errs = append(errs, errors.New("idp: no clients"))
	}
	seen = make(map[string]bool)
	for i, cl := range c.Clients {
		errs = append(errs, cl.validate(i)...)
		if seen[cl.ID] {
			errs = append(errs, fmt.Errorf("idp: clients[%d]: duplicate id %q", i, cl.ID))
		}
		seen[cl.ID] = true
	}
	return errors.Join(errs...)
}

func validateIssuer(issuer string) []error {
	u, err := url.Parse(issuer)
	switch {
	case issuer == "":
		return []error{errors.New("idp: issuer is required")}
	case err != nil:
		return []error{fmt.Errorf("idp: issuer: %w", err)}
	case u.Scheme != "https" || u.Host == "":
		return []error{fmt.Errorf("idp: issuer %q must be an absolute https URL", issuer)}
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return []error{fmt.Errorf("idp: issuer %q must have no path, query, fragment or user info", issuer)}
	}
	return nil
}

func (u User) validate(i int) []error {
	var errs []error
	if u.Username == "" || strings.ContainsAny(u.Username, " \t\r\n") {
		errs = append(errs, fmt.Errorf("idp: users[%d]: username %q must be non-empty without spaces", i, u.Username))
	}
	if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
		errs = append(errs, fmt.Errorf("idp: users[%d] (%s): password_hash is not a bcrypt hash", i, u.Username))
	}
	if u.TOTPSecret == "" {
		errs = append(errs, fmt.Errorf("idp: users[%d] (%s): totp_secret is required (any client may ask for MFA)", i, u.Username))
	} else if _, err := decodeTOTPSecret(u.TOTPSecret); err != nil {
		errs = append(errs, fmt.Errorf("idp: users[%d] (%s): totp_secret is not base32", i, u.Username))
	}
	return errs
}

func (c Client) validate(i int) []error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, fmt.Errorf("idp: clients[%d]: id is required", i))
	}
	if c.Secret != "" && len(c.Secret) < minClientSecret {
		errs = append(errs, fmt.Errorf("idp: clients[%d] (%s): secret must be at least %d characters", i, c.ID, minClientSecret))
	}
	if len(c.RedirectURIs) == 0 {
		errs = append(errs, fmt.Errorf("idp: clients[%d] (%s): at least one redirect URI is required", i, c.ID))
	}
	check := func(kind, raw string) {
		if err := validateClientURL(raw); err != nil {
			errs = append(errs, fmt.Errorf("idp: clients[%d] (%s): %s %q: %w", i, c.ID, kind, raw, err))
		}
	}
	for _, u := range c.RedirectURIs {
		check("redirect URI", u)
	}
	for _, u := range c.PostLogoutRedirectURIs {
		check("post-logout redirect URI", u)
	}
	if c.BackChannelLogoutURI != "" {
		check("back-channel logout URI", c.BackChannelLogoutURI)
	}
	return errs
}

// validateClientURL accepts absolute http(s) URLs without a fragment, as
// OAuth 2.0 (RFC 6749 §3.1.2) and Back-Channel Logout 1.0 §2.2 require.
func validateClientURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	return nil
}

// decodeTOTPSecret decodes a base32 secret, with or without padding and in
// either case, as authenticator apps write them.
func decodeTOTPSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.TrimRight(strings.TrimSpace(s), "="))
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) < 10 {
		return nil, errors.New("totp secret shorter than 80 bits")
	}
	return b, nil
}
