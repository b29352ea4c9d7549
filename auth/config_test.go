package auth

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

func validConfig() Config {
	c := Config{
		Issuer:       "https://idp.example.com/realms/crm",
		ClientID:     "gateway",
		ClientSecret: secret.FromValue([]byte(testClientSecret)),
		ExternalURL:  "https://crm.example.com",
	}
	c.Defaults()
	return c
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := Config{
		Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, ExternalURL: c.ExternalURL,
		RedirectPath: "/.crmgate/callback", LogoutPath: "/.crmgate/logout", BackChannelLogoutPath: "/.crmgate/backchannel-logout", StepUpPath: "/.crmgate/step-up",
		Scopes:          []string{"openid", "profile", "email", "offline_access"},
		SigningAlgs:     []string{"RS256", "ES256"},
		Roles:           RolesConfig{Claim: "roles"},
		LoginCookieName: "__Host-crmgate-login", LoginTTL: 10 * time.Minute, ClockSkew: 30 * time.Second,
		LogoutTokenMaxAge: 5 * time.Minute,
	}
	if d := cmp.Diff(c, want, cmp.Comparer(func(a, b secret.Ref) bool { return a.String() == b.String() })); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"empty", func(c *Config) { *c = Config{}; c.Defaults() }, []string{"issuer", "client_id", "client_secret", "external_url"}},
		{"http issuer", func(c *Config) { c.Issuer = "http://idp.example.com" }, []string{"issuer"}},
		{"issuer with query", func(c *Config) { c.Issuer = "https://idp.example.com/?x=1" }, []string{"issuer"}},
		{"external url with path", func(c *Config) { c.ExternalURL = "https://crm.example.com/app" }, []string{"external_url"}},
		{"external url with user", func(c *Config) { c.ExternalURL = "https://u@crm.example.com" }, []string{"external_url"}},
		{"unresolved secret is the config package's to report", func(c *Config) { c.ClientSecret = secret.MustParseRef("env:X") }, nil},
		{"paths", func(c *Config) {
			c.RedirectPath = "callback"
			c.LogoutPath = "/.crmgate/../logout"
			c.BackChannelLogoutPath = "/a b"
		}, []string{"redirect_path", "logout_path", "backchannel_logout_path"}},
		{"same path twice", func(c *Config) { c.LogoutPath = c.RedirectPath }, []string{"logout_path"}},
		{"scopes", func(c *Config) { c.Scopes = []string{"profile", "a b"} }, []string{"scopes", "scopes[1]"}},
		{"algorithms", func(c *Config) { c.SigningAlgs = []string{"RS256", "none", "HS256"} }, []string{"signing_algs[1]", "signing_algs[2]"}},
		{"no algorithms", func(c *Config) { c.SigningAlgs = []string{} }, []string{"signing_algs"}},
		{"roles", func(c *Config) { c.Roles = RolesConfig{Map: map[string]string{"x": ""}} }, []string{"roles.claim", "roles.map"}},
		{"post logout url", func(c *Config) { c.PostLogoutRedirectURL = "/signed-out" }, []string{"post_logout_redirect_url"}},
		{"cookie without __Host-", func(c *Config) { c.LoginCookieName = "crmgate-login" }, []string{"login_cookie_name"}},
		{"cookie bad char", func(c *Config) { c.LoginCookieName = "__Host-a;b" }, []string{"login_cookie_name"}},
		{"durations", func(c *Config) {
			c.LoginTTL = 2 * time.Hour
			c.ClockSkew = -time.Second
			c.LogoutTokenMaxAge = -1
		}, []string{"login_ttl", "clock_skew", "logout_token_max_age"}},
		{"short key", func(c *Config) { c.Key = secret.FromValue([]byte("short")) }, []string{"key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				var fe *fielderr.Error
				if !errors.As(e, &fe) {
					t.Fatalf("not a fielderr: %v", e)
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.paths)
			slices.Sort(want)
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("Validate() paths (-got +want):\n%s\n%v", d, c.Validate())
			}
		})
	}
}
