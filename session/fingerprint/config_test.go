package fingerprint

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{TrustedJA4Header: "x-ja4-fingerprint"}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := Config{
		Components:       []string{"ja4", "user_agent", "ip_prefix"},
		IPv4PrefixLength: 24, IPv6PrefixLength: 48,
		TrustedJA4Header: "X-Ja4-Fingerprint",
	}
	if d := cmp.Diff(c, want); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
	// Defaults must not share the package's list.
	c.Components[0] = "changed"
	var again Config
	again.Defaults()
	if again.Components[0] != ComponentJA4 {
		t.Errorf("Defaults shares its component list: %q", again.Components)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"all components", func(c *Config) {
			c.Components = []string{"accept_language", "ip_prefix", "ja4", "user_agent"}
		}, nil},
		{"unknown component", func(c *Config) { c.Components = []string{"ja4", "ja3"} }, []string{"components[1]"}},
		{"duplicate component", func(c *Config) { c.Components = []string{"ja4", "user_agent", "ja4"} }, []string{"components[2]"}},
		{"no components", func(c *Config) { c.Components = []string{} }, []string{"components"}},
		{"prefix lengths", func(c *Config) { c.IPv4PrefixLength = 33; c.IPv6PrefixLength = -1 }, []string{"ipv4_prefix_length", "ipv6_prefix_length"}},
		{"prefix lengths at the limits", func(c *Config) { c.IPv4PrefixLength = 32; c.IPv6PrefixLength = 1 }, nil},
		{"header name", func(c *Config) { c.TrustedJA4Header = "X JA4" }, []string{"trusted_ja4_header"}},
		{"header name with colon", func(c *Config) { c.TrustedJA4Header = "X-JA4:" }, []string{"trusted_ja4_header"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := defaultConfig()
			tc.edit(&c)
			err := c.Validate()
			var paths []string
			for _, e := range fielderr.Flatten(err) {
				var fe *fielderr.Error
				if !errors.As(e, &fe) {
					t.Fatalf("Validate() error %v is not a *fielderr.Error", e)
				}
				paths = append(paths, fe.Path)
			}
			slices.Sort(paths)
			want := slices.Clone(tc.paths)
			slices.Sort(want)
			if d := cmp.Diff(paths, want); d != "" {
				t.Errorf("Validate() = %v; paths (-got +want):\n%s", err, d)
			}
		})
	}
}
