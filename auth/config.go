package auth

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Defaults of Config.
const (
	DefaultRedirectPath          = "/.crmgate/callback"
	DefaultLogoutPath            = "/.crmgate/logout"
	DefaultBackChannelLogoutPath = "/.crmgate/backchannel-logout"
	DefaultStepUpPath            = "/.crmgate/step-up"
	DefaultLoginCookieName       = "__Host-crmgate-login"
	DefaultRolesClaim            = "roles"
	DefaultLoginTTL              = 10 * time.Minute
	DefaultClockSkew             = 30 * time.Second
	DefaultLogoutTokenMaxAge     = 5 * time.Minute
)

// MinKeyBytes is the least length of Config.Key: the pre-login cookie's
// AES-256 key and the CSRF HMAC key are derived from it.
const MinKeyBytes = 32

// cookiePrefix keeps the pre-login cookies host-only and HTTPS-only, so a
// sibling subdomain cannot plant or overwrite them (RFC 6265bis §4.1.3.2).
const cookiePrefix = "__Host-"

// Config configures the OIDC relying party. The zero value is not valid:
// issuer, client_id, client_secret and external_url are required;
// everything else has defaults (see Defaults).
type Config struct {
	Issuer       string     `yaml:"issuer" jsonschema_description:"The OpenID Provider's issuer URL (https), exactly as its discovery document and ID tokens state it."`
	ClientID     string     `yaml:"client_id" jsonschema_description:"The gateway's client_id at the provider."`
	ClientSecret secret.Ref `yaml:"client_secret" jsonschema_description:"Secret reference (env:NAME or file:/path) to the client secret."`
	ExternalURL  string     `yaml:"external_url" jsonschema_description:"The gateway's public origin as browsers reach it (https://crm.example.com); the redirect URI is this plus redirect_path. Never taken from request headers."`

	RedirectPath          string `yaml:"redirect_path" jsonschema_description:"Path of the authorization callback (redirect_uri). Default /.crmgate/callback."`
	LogoutPath            string `yaml:"logout_path" jsonschema_description:"Path of the logout endpoint (POST with a CSRF token; GET shows a confirmation form). Default /.crmgate/logout."`
	BackChannelLogoutPath string `yaml:"backchannel_logout_path" jsonschema_description:"Path of the OpenID Back-Channel Logout endpoint registered at the provider. Default /.crmgate/backchannel-logout."`
	StepUpPath            string `yaml:"step_up_path" jsonschema_description:"Path that starts a step-up (a fresh, stronger sign-in the policy asks for) from a link, and below it (/done) the page that follows one for an action to repeat. Default /.crmgate/step-up."`

	Scopes      []string `yaml:"scopes" jsonschema_description:"Scopes requested at login; must include openid. Default openid profile email offline_access."`
	SigningAlgs []string `yaml:"signing_algs" jsonschema_description:"Algorithms accepted for ID and logout token signatures, never taken from the token itself (RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA). Default RS256 ES256."`

	Roles RolesConfig `yaml:"roles" jsonschema_description:"Where the user's roles come from."`

	UserInfo              bool   `yaml:"userinfo" jsonschema_description:"Also call the userinfo endpoint at login; its claims complete the ID token's (its sub must be the ID token's)."`
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url" jsonschema_description:"Where the provider sends the browser after logout (registered there as a post_logout_redirect_uri). Empty: the provider's own page."`

	LoginCookieName   string        `yaml:"login_cookie_name" jsonschema_description:"Name prefix of the short-lived pre-login cookies (one per pending login); must start with __Host-. Default __Host-crmgate-login."`
	LoginTTL          time.Duration `yaml:"login_ttl" jsonschema_description:"How long a started login may take at the provider. Default 10m, at most 1h."`
	ClockSkew         time.Duration `yaml:"clock_skew" jsonschema_description:"Leeway for exp, iat, nbf and auth_time against the provider's clock. Default 30s, at most 5m."`
	LogoutTokenMaxAge time.Duration `yaml:"logout_token_max_age" jsonschema_description:"Oldest iat a back-channel logout token may carry. Default 5m."`

	CAFile string `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that sign the provider's TLS certificate (a private CA). Empty: the system roots."`

	Key secret.Ref `yaml:"key" jsonschema_description:"Secret reference to at least 32 bytes that seal pre-login cookies and derive logout CSRF tokens; every replica needs the same. Empty: derived from client_secret."`
}

// RolesConfig says how claims become the subject's roles.
type RolesConfig struct {
	Claim string `yaml:"claim" jsonschema_description:"Claim holding the roles (a string or an array of strings); a dotted path such as realm_access.roles reaches into objects when no claim has the whole name. Default roles."`
	// Map, when set, is an allow-list: only the provider's values it
	// names become roles, under the gateway's name.
	Map map[string]string `yaml:"map" jsonschema_description:"Optional mapping from the provider's role values to the gateway's role names. When set, values it does not name are dropped."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	setStr(&c.RedirectPath, DefaultRedirectPath)
	setStr(&c.LogoutPath, DefaultLogoutPath)
	setStr(&c.BackChannelLogoutPath, DefaultBackChannelLogoutPath)
	setStr(&c.StepUpPath, DefaultStepUpPath)
	if c.Scopes == nil {
		c.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	if c.SigningAlgs == nil {
		c.SigningAlgs = []string{"RS256", "ES256"}
	}
	setStr(&c.Roles.Claim, DefaultRolesClaim)
	setStr(&c.LoginCookieName, DefaultLoginCookieName)
	setDur(&c.LoginTTL, DefaultLoginTTL)
	setDur(&c.ClockSkew, DefaultClockSkew)
	setDur(&c.LogoutTokenMaxAge, DefaultLogoutTokenMaxAge)
}

func setStr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// allowedAlgs are the asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037).
// "none" and the HMAC ones are never allowed: an HS256 token "signed" with
// the provider's public key is the classic algorithm-confusion forgery.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

var (
	// cookieNameRe is an RFC 6265 §4.1.1 cookie-name (an RFC 9110 token).
	cookieNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// scopeRe is an RFC 6749 §3.3 scope-token.
	scopeRe = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`)
	// pathRe is an absolute path of plain segments.
	pathRe = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)
)

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if err := checkOrigin(c.Issuer, true); err != nil {
		add("issuer", "%v", err)
	}
	if c.ClientID == "" {
		add("client_id", "required")
	}
	if c.CAFile != "" {
		if _, err := c.HTTPClient(); err != nil {
			add("ca_file", "%v", err)
		}
	}
	if c.ClientSecret.IsZero() {
		// An unresolved reference is the config package's to report.
		add("client_secret", "required: a secret reference (env:NAME or file:/path)")
	}
	if err := checkOrigin(c.ExternalURL, false); err != nil {
		add("external_url", "%v", err)
	}

	paths := map[string]string{}
	for _, p := range []struct{ key, val string }{
		{"redirect_path", c.RedirectPath}, {"logout_path", c.LogoutPath}, {"backchannel_logout_path", c.BackChannelLogoutPath},
		{"step_up_path", c.StepUpPath},
	} {
		if !pathRe.MatchString(p.val) || strings.Contains(p.val, "/../") || strings.HasSuffix(p.val, "/..") || strings.Contains(p.val, "/./") {
			add(p.key, "%q is not an absolute path of plain segments (e.g. /.crmgate/callback)", p.val)
			continue
		}
		if !strings.HasPrefix(p.val, "/.crmgate/") {
			// The gateway serves its own endpoints under /.crmgate/ only;
			// anything else is a route to the CRM.
			add(p.key, "%q must be under /.crmgate/", p.val)
			continue
		}
		if other, dup := paths[p.val]; dup {
			add(p.key, "%q is also %s", p.val, other)
		}
		paths[p.val] = p.key
	}

	if !slices.Contains(c.Scopes, "openid") {
		add("scopes", "must include openid")
	}
	for i, s := range c.Scopes {
		if !scopeRe.MatchString(s) {
			add(fmt.Sprintf("scopes[%d]", i), "%q is not a scope token", s)
		}
	}
	if len(c.SigningAlgs) == 0 {
		add("signing_algs", "at least one algorithm is required (e.g. RS256)")
	}
	for i, a := range c.SigningAlgs {
		if !slices.Contains(allowedAlgs, a) {
			add(fmt.Sprintf("signing_algs[%d]", i), "%q is not allowed (%s); none and HMAC algorithms are never accepted", a, strings.Join(allowedAlgs, ", "))
		}
	}
	if c.Roles.Claim == "" {
		add("roles.claim", "required")
	}
	for k, v := range c.Roles.Map {
		if k == "" || v == "" {
			add("roles.map", "empty role name in %q: %q", k, v)
		}
	}
	if c.PostLogoutRedirectURL != "" {
		if u, err := url.Parse(c.PostLogoutRedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
			add("post_logout_redirect_url", "%q must be an absolute http(s) URL without user info or fragment", c.PostLogoutRedirectURL)
		}
	}
	switch {
	case !strings.HasPrefix(c.LoginCookieName, cookiePrefix):
		add("login_cookie_name", "%q must start with %s so that browsers bind it to this host over HTTPS", c.LoginCookieName, cookiePrefix)
	case len(c.LoginCookieName) == len(cookiePrefix) || !cookieNameRe.MatchString(c.LoginCookieName):
		add("login_cookie_name", "%q is not a cookie name", c.LoginCookieName)
	}
	if c.LoginTTL <= 0 || c.LoginTTL > time.Hour {
		add("login_ttl", "must be positive and at most 1h, got %s", c.LoginTTL)
	}
	if c.ClockSkew < 0 || c.ClockSkew > 5*time.Minute {
		add("clock_skew", "must be between 0 and 5m, got %s", c.ClockSkew)
	}
	if c.LogoutTokenMaxAge <= 0 || c.LogoutTokenMaxAge > time.Hour {
		add("logout_token_max_age", "must be positive and at most 1h, got %s", c.LogoutTokenMaxAge)
	}
	if !c.Key.IsZero() && c.Key.Value() != nil && len(c.Key.Value()) < MinKeyBytes {
		add("key", "secret %s is %d bytes, at least %d are required", c.Key, len(c.Key.Value()), MinKeyBytes)
	}
	return errors.Join(errs...)
}

// checkOrigin accepts an absolute https URL without query, fragment or
// user info; path-less unless allowPath (issuers may have a path, e.g. a
// Keycloak realm).
func checkOrigin(raw string, allowPath bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q must be an absolute https URL", raw)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#") || u.User != nil:
		return fmt.Errorf("%q must have no query, fragment or user info", raw)
	case !allowPath && u.Path != "" && u.Path != "/":
		return fmt.Errorf("%q must have no path", raw)
	}
	return nil
}
