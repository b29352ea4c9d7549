package bearer

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

func validConfig() Config {
	c := Config{Issuers: []IssuerConfig{
		{Issuer: "https://idp.example.com/realms/crm", Audience: "https://crm.example.com/api"},
		{Issuer: "https://login.partner.example", Audience: "crm-api", JWKSURL: "https://login.partner.example/keys"},
	}}
	c.Defaults()
	return c
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := IssuerConfig{
		Issuer: "https://idp.example.com/realms/crm", Audience: "https://crm.example.com/api",
		Algorithms: []string{"RS256", "ES256"}, Leeway: 30 * time.Second, RefreshCooldown: time.Minute,
		ScopesClaim: "scope", RolesClaim: "roles", SubjectClaim: "sub",
	}
	if d := cmp.Diff(c.Issuers[0], want); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
	if c.MaxTokenBytes != 8192 {
		t.Errorf("MaxTokenBytes = %d, want 8192", c.MaxTokenBytes)
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
		{"no issuers", func(c *Config) { c.Issuers = nil }, []string{"issuers"}},
		{"empty issuer", func(c *Config) { c.Issuers[1] = IssuerConfig{}; c.Defaults() }, []string{"issuers[1].issuer", "issuers[1].audience"}},
		{"http issuer", func(c *Config) { c.Issuers[0].Issuer = "http://idp.example.com" }, []string{"issuers[0].issuer"}},
		{"issuer with query", func(c *Config) { c.Issuers[0].Issuer = "https://idp.example.com/?x=1" }, []string{"issuers[0].issuer"}},
		{"issuer with user", func(c *Config) { c.Issuers[0].Issuer = "https://u@idp.example.com" }, []string{"issuers[0].issuer"}},
		{"duplicate issuer", func(c *Config) { c.Issuers[1].Issuer = c.Issuers[0].Issuer }, []string{"issuers[1].issuer"}},
		{"http jwks url", func(c *Config) { c.Issuers[1].JWKSURL = "http://login.partner.example/keys" }, []string{"issuers[1].jwks_url"}},
		// Algorithm confusion and unsigned tokens must not be configurable.
		{"none and HMAC", func(c *Config) { c.Issuers[0].Algorithms = []string{"RS256", "none", "HS256", "rs256"} },
			[]string{"issuers[0].algorithms[1]", "issuers[0].algorithms[2]", "issuers[0].algorithms[3]"}},
		{"no algorithms", func(c *Config) { c.Issuers[0].Algorithms = []string{} }, []string{"issuers[0].algorithms"}},
		{"durations", func(c *Config) {
			c.Issuers[0].Leeway = 6 * time.Minute
			c.Issuers[0].RefreshCooldown = time.Millisecond
			c.Issuers[1].Leeway = -time.Second
			c.Issuers[1].RefreshCooldown = 2 * time.Hour
		}, []string{"issuers[0].leeway", "issuers[0].refresh_cooldown", "issuers[1].leeway", "issuers[1].refresh_cooldown"}},
		{"roles", func(c *Config) {
			c.Issuers[0].RolesClaim = "."
			c.Issuers[0].RolesMap = map[string]string{"x": ""}
			c.Issuers[1].RolesClaim = strings.Repeat("a.", 9) + "a"
		}, []string{"issuers[0].roles_claim", "issuers[0].roles_map", "issuers[1].roles_claim"}},
		{"claims", func(c *Config) { c.Issuers[0].ScopesClaim, c.Issuers[0].SubjectClaim = "", "" },
			[]string{"issuers[0].scopes_claim", "issuers[0].subject_claim"}},
		{"require type", func(c *Config) {
			c.Issuers[0].RequireType = "application/JWT"
			c.Issuers[1].RequireType = "at jwt"
		}, []string{"issuers[0].require_type", "issuers[1].require_type"}},
		{"require type at+jwt", func(c *Config) { c.Issuers[0].RequireType = "application/at+jwt" }, nil},
		{"max token bytes", func(c *Config) { c.MaxTokenBytes = 1 << 20 }, []string{"max_token_bytes"}},
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

func TestNewRefusesInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Issuers: []IssuerConfig{{Issuer: "https://idp.example", Audience: "api", Algorithms: []string{"HS256"}}}}, nil, nil, nil)
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Path != "issuers[0].algorithms[0]" {
		t.Errorf("New(HS256) = %v, want a fielderr at issuers[0].algorithms[0]", err)
	}
}

// New applies Defaults to its own copy, never to the caller's slice.
func TestNewDoesNotChangeCallersConfig(t *testing.T) {
	t.Parallel()
	cfg := Config{Issuers: []IssuerConfig{{Issuer: "https://idp.example", Audience: "api"}}}
	if _, err := New(cfg, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cfg, Config{Issuers: []IssuerConfig{{Issuer: "https://idp.example", Audience: "api"}}}); d != "" {
		t.Errorf("cfg after New (-got +want):\n%s", d)
	}
}
