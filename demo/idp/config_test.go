package idp

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		Issuer: "https://localhost:8444",
		Users: []User{{
			Username: "alice", PasswordHash: "$2a$04$w1YfgVvI0pQnXU6cMqS0EO9c8N2wQkqzYc8E1rQ7Qx3hY3l0Zm6rS",
			Roles: []string{"sales"}, TOTPSecret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
		}},
		Clients: []Client{{
			ID: "gateway", Secret: "0123456789abcdef0123",
			RedirectURIs: []string{"https://localhost:8443/auth/callback"}, BackChannelLogoutURI: "https://localhost:8443/auth/backchannel",
		}},
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		tweak func(*Config)
		want  []string // substrings of the error; nil means valid
	}{
		{name: "valid", tweak: func(*Config) {}},
		{name: "issuer with trailing slash", tweak: func(c *Config) { c.Issuer += "/" }},
		{name: "no issuer", tweak: func(c *Config) { c.Issuer = "" }, want: []string{"issuer is required"}},
		{name: "http issuer", tweak: func(c *Config) { c.Issuer = "http://localhost:8444" }, want: []string{"https URL"}},
		{name: "issuer with path", tweak: func(c *Config) { c.Issuer = "https://localhost:8444/idp" }, want: []string{"no path"}},
		{name: "negative ttl", tweak: func(c *Config) { c.AccessTokenTTL = -time.Second }, want: []string{"access_token_ttl must not be negative"}},
		{name: "tiny key rotation", tweak: func(c *Config) { c.KeyRotation = time.Second }, want: []string{"key_rotation must be at least"}},
		{name: "bad hash", tweak: func(c *Config) { c.Users[0].PasswordHash = "secret" }, want: []string{"not a bcrypt hash"}},
		{name: "no totp", tweak: func(c *Config) { c.Users[0].TOTPSecret = "" }, want: []string{"totp_secret is required"}},
		{name: "bad totp", tweak: func(c *Config) { c.Users[0].TOTPSecret = "not base32!" }, want: []string{"not base32"}},
		{name: "duplicate user", tweak: func(c *Config) { c.Users = append(c.Users, c.Users[0]) }, want: []string{"duplicate username"}},
		{name: "short client secret", tweak: func(c *Config) { c.Clients[0].Secret = "short" }, want: []string{"at least 16"}},
		{name: "no redirect", tweak: func(c *Config) { c.Clients[0].RedirectURIs = nil }, want: []string{"at least one redirect URI"}},
		{name: "redirect with fragment", tweak: func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://x/cb#f"} }, want: []string{"fragment"}},
		{name: "relative back-channel URI", tweak: func(c *Config) { c.Clients[0].BackChannelLogoutURI = "/logout" }, want: []string{"absolute http(s) URL"}},
		{name: "every problem at once", tweak: func(c *Config) {
			c.Issuer = ""
			c.Users = nil
			c.Clients[0].ID = ""
		}, want: []string{"issuer is required", "no users", "id is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.tweak(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Issuer = "http://localhost"
	if _, err := New(c, nil, nil); err == nil {
		t.Error("New with an http issuer succeeded")
	}
}
