package bearer

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
)

// Defaults of Config and IssuerConfig.
const (
	DefaultMaxTokenBytes   = 8192
	DefaultLeeway          = 30 * time.Second
	DefaultRefreshCooldown = time.Minute
	DefaultScopesClaim     = "scope"
	DefaultRolesClaim      = "roles"
	DefaultSubjectClaim    = "sub"
)

// defaultAlgorithms are the signature algorithms an issuer's tokens may use
// when IssuerConfig.Algorithms is unset (Defaults copies them).
var defaultAlgorithms = []string{"RS256", "ES256"}

// Bounds of the configuration.
const (
	minTokenBytes      = 1024
	maxTokenBytesLimit = 64 << 10
	maxLeeway          = 5 * time.Minute
	minRefreshCooldown = time.Second
	maxRefreshCooldown = time.Hour
	// maxClaimPathParts bounds a dotted roles path, and with it how deep
	// reading roles descends into the claims.
	maxClaimPathParts = 8
)

// Config configures bearer-token verification. The zero value is not
// valid: at least one issuer is required. New applies Defaults itself.
type Config struct {
	Issuers []IssuerConfig `yaml:"issuers" jsonschema_description:"The identity providers whose access tokens are accepted, each with its own audience and keys. A token is matched to one by its iss claim, exactly."`
	// MaxTokenBytes caps a token's length before anything parses it.
	MaxTokenBytes int `yaml:"max_token_bytes" jsonschema_description:"Longest token accepted, in bytes; longer ones are refused before any parsing. Default 8192, between 1024 and 65536."`
}

// IssuerConfig is one identity provider whose access tokens are accepted.
// Zero fields other than Issuer and Audience take their defaults.
type IssuerConfig struct {
	Issuer   string `yaml:"issuer" jsonschema_description:"The issuer (https URL) exactly as the provider's tokens state it in iss."`
	Audience string `yaml:"audience" jsonschema_description:"The API's audience at this provider; a token's aud (a string or an array) must contain it. Use an identifier of the API, never a client's id, so that no client's ID token can carry it."`
	JWKSURL  string `yaml:"jwks_url" jsonschema_description:"https URL of the provider's JSON Web Key Set. Empty: the jwks_uri of the issuer's OpenID Connect discovery document."`

	Algorithms []string `yaml:"algorithms" jsonschema_description:"Signature algorithms accepted, never taken from the token (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA). Default RS256 ES256."`

	Leeway          time.Duration `yaml:"leeway" jsonschema_description:"Tolerated clock difference with the provider for exp, nbf and iat. Default 30s, at most 5m."`
	RefreshCooldown time.Duration `yaml:"refresh_cooldown" jsonschema_description:"Least time between key-set fetches caused by tokens naming an unknown key (kid); tokens with unknown keys in between are refused without a fetch. Default 1m, between 1s and 1h."`

	ScopesClaim  string            `yaml:"scopes_claim" jsonschema_description:"Claim holding the granted scopes: a space-separated string or an array of strings. Default scope, and then scp when the token has no scope claim."`
	RolesClaim   string            `yaml:"roles_claim" jsonschema_description:"Claim holding the client's roles (a string or an array of strings); a dotted path such as realm_access.roles reaches into objects when no claim has the whole name. Default roles."`
	RolesMap     map[string]string `yaml:"roles_map" jsonschema_description:"Optional mapping from the provider's role values to the gateway's role names. When set, values it does not name are dropped."`
	SubjectClaim string            `yaml:"subject_claim" jsonschema_description:"Claim naming the calling client, the subject's id (e.g. client_id or azp for client-credentials tokens). Default sub."`

	RequireType string `yaml:"require_type" jsonschema_description:"When set, the token's typ header must be this type (e.g. at+jwt, RFC 9068), compared case-insensitively and with or without application/. Empty: typ may be absent, JWT or at+jwt."`

	CAFile string `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that sign the provider's TLS certificate (a private CA). Empty: the system roots."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	for i := range c.Issuers {
		c.Issuers[i].Defaults()
	}
}

// Defaults fills unset fields with their defaults.
func (c *IssuerConfig) Defaults() {
	if c.Algorithms == nil {
		c.Algorithms = slices.Clone(defaultAlgorithms)
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.RefreshCooldown == 0 {
		c.RefreshCooldown = DefaultRefreshCooldown
	}
	if c.ScopesClaim == "" {
		c.ScopesClaim = DefaultScopesClaim
	}
	if c.RolesClaim == "" {
		c.RolesClaim = DefaultRolesClaim
	}
	if c.SubjectClaim == "" {
		c.SubjectClaim = DefaultSubjectClaim
	}
}

// allowedAlgs are the asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037).
// "none" and the HMAC ones are never allowed: an HS256 token "signed" with
// the provider's public key is the classic algorithm-confusion forgery.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// typeRe is a media type name as typ carries it (RFC 7515 §4.1.9,
// RFC 6838 §4.2), with an optional application/ prefix.
var typeRe = regexp.MustCompile(`^(?i:application/)?[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`)

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and does no I/O: a CA file is read by Start.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if len(c.Issuers) == 0 {
		add("issuers", "at least one issuer is required")
	}
	if c.MaxTokenBytes < minTokenBytes || c.MaxTokenBytes > maxTokenBytesLimit {
		add("max_token_bytes", "must be between %d and %d, got %d", minTokenBytes, maxTokenBytesLimit, c.MaxTokenBytes)
	}
	seen := map[string]int{}
	for i, ic := range c.Issuers {
		prefix := fmt.Sprintf("issuers[%d]", i)
		errs = append(errs, fielderr.Flatten(fielderr.Prefix(prefix, ic.Validate()))...)
		if j, dup := seen[ic.Issuer]; dup && ic.Issuer != "" {
			add(prefix+".issuer", "%q is also issuers[%d]; one issuer, one entry", ic.Issuer, j)
			continue
		}
		seen[ic.Issuer] = i
	}
	return errors.Join(errs...)
}

// Validate reports every problem of one issuer's configuration at once,
// with paths relative to it. It expects Defaults to have run.
func (c IssuerConfig) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if err := checkHTTPS(c.Issuer, true); err != nil {
		add("issuer", "%v", err)
	}
	if c.Audience == "" {
		add("audience", "required: the API's audience, which the tokens' aud must contain")
	}
	if c.JWKSURL != "" {
		if err := checkHTTPS(c.JWKSURL, false); err != nil {
			add("jwks_url", "%v", err)
		}
	}
	if len(c.Algorithms) == 0 {
		add("algorithms", "at least one algorithm is required (e.g. RS256)")
	}
	for i, a := range c.Algorithms {
		if !slices.Contains(allowedAlgs, a) {
			add(fmt.Sprintf("algorithms[%d]", i), "%q is not allowed (%s); none and HMAC algorithms are never accepted", a, strings.Join(allowedAlgs, ", "))
		}
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		add("leeway", "must be between 0 and %s, got %s", maxLeeway, c.Leeway)
	}
	if c.RefreshCooldown < minRefreshCooldown || c.RefreshCooldown > maxRefreshCooldown {
		add("refresh_cooldown", "must be between %s and %s, got %s", minRefreshCooldown, maxRefreshCooldown, c.RefreshCooldown)
	}
	if c.ScopesClaim == "" {
		add("scopes_claim", "required")
	}
	if c.SubjectClaim == "" {
		add("subject_claim", "required")
	}
	if err := checkClaimPath(c.RolesClaim); err != nil {
		add("roles_claim", "%v", err)
	}
	for k, v := range c.RolesMap {
		if k == "" || v == "" {
			add("roles_map", "empty role name in %q: %q", k, v)
		}
	}
	if c.RequireType != "" {
		switch {
		case !typeRe.MatchString(c.RequireType):
			add("require_type", "%q is not a media type (e.g. at+jwt)", c.RequireType)
		case normalizeType(c.RequireType) == "jwt":
			// Explicit typing (RFC 8725 §3.11) needs a type that only
			// access tokens carry; ID tokens are typed JWT too.
			add("require_type", "%q does not tell access tokens from ID tokens; use the provider's access-token type (e.g. at+jwt)", c.RequireType)
		}
	}
	return errors.Join(errs...)
}

// checkHTTPS accepts an absolute https URL without fragment or user info,
// and, for an issuer, without a query.
func checkHTTPS(raw string, issuer bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q must be an absolute https URL", raw)
	case u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil:
		return fmt.Errorf("%q must have no fragment or user info", raw)
	case issuer && (u.RawQuery != "" || strings.Contains(raw, "?")):
		// OpenID Connect Discovery 1.0 §3: an issuer has no query.
		return fmt.Errorf("%q must have no query", raw)
	}
	return nil
}

// checkClaimPath accepts a claim name or a dotted path of at most
// maxClaimPathParts non-empty names.
func checkClaimPath(p string) error {
	if p == "" {
		return errors.New("required")
	}
	parts := strings.Split(p, ".")
	if len(parts) > maxClaimPathParts {
		return fmt.Errorf("%q has more than %d parts", p, maxClaimPathParts)
	}
	// A name that holds dots (a namespaced claim such as
	// https://example.com/roles) is found whole first, so only a path of
	// empty parts is refused.
	if !slices.ContainsFunc(parts, func(s string) bool { return s != "" }) {
		return fmt.Errorf("%q names no claim", p)
	}
	return nil
}

// normalizeType lower-cases a typ value and drops an application/ prefix
// (RFC 7515 §4.1.9: "application/" may be omitted).
func normalizeType(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}
