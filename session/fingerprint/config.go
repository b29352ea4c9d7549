package fingerprint

import (
	"errors"
	"fmt"
	"net/textproto"
	"regexp"
	"slices"

	"github.com/crmgate/crmgate/fielderr"
)

// Component names: the keys of a Fingerprint and the values of Changed
// that policies see.
const (
	ComponentJA4            = "ja4"
	ComponentUserAgent      = "user_agent"
	ComponentIPPrefix       = "ip_prefix"
	ComponentAcceptLanguage = "accept_language"
)

// components lists every known component, sorted, so that Compare reports
// changes in a stable order without sorting.
var components = [...]string{ComponentAcceptLanguage, ComponentIPPrefix, ComponentJA4, ComponentUserAgent}

// defaultComponents are the components bound and compared unless the
// configuration says otherwise.
var defaultComponents = []string{ComponentJA4, ComponentUserAgent, ComponentIPPrefix}

// Default prefix lengths: an IPv4 /24 is commonly one site or one carrier
// NAT pool, and an IPv6 /48 the customary allocation to one customer site;
// a client's address may change within them without counting as a move.
const (
	DefaultIPv4PrefixLength = 24
	DefaultIPv6PrefixLength = 48
)

// Config says which components make up a fingerprint. The zero value,
// after Defaults, binds ja4, user_agent and ip_prefix with /24 and /48
// networks and trusts no header.
type Config struct {
	Components       []string `yaml:"components" jsonschema_description:"Fingerprint components bound to a session at login and compared on every request: ja4 (TLS client fingerprint), user_agent (browser family and major version), ip_prefix (client network), accept_language (up to three language subtags; changes when a user changes browser settings). Default [ja4, user_agent, ip_prefix]."`
	IPv4PrefixLength int      `yaml:"ipv4_prefix_length" jsonschema_description:"Length of the IPv4 network that ip_prefix binds, 1 to 32. Default 24."`
	IPv6PrefixLength int      `yaml:"ipv6_prefix_length" jsonschema_description:"Length of the IPv6 network that ip_prefix binds, 1 to 128. Default 48."`
	TrustedJA4Header string   `yaml:"trusted_ja4_header" jsonschema_description:"Request header holding the client's JA4 fingerprint, set by a TLS-terminating proxy in front of the gateway (for example X-JA4). When set, ja4 comes only from this header, never from the gateway's own handshake. Set it only if every request reaches the gateway through that proxy and the proxy overwrites the header: a client that can reach the gateway directly can send any value. Default none."`
}

// Defaults fills unset fields with their defaults and puts the header
// name in canonical form.
func (c *Config) Defaults() {
	if len(c.Components) == 0 {
		c.Components = slices.Clone(defaultComponents)
	}
	if c.IPv4PrefixLength == 0 {
		c.IPv4PrefixLength = DefaultIPv4PrefixLength
	}
	if c.IPv6PrefixLength == 0 {
		c.IPv6PrefixLength = DefaultIPv6PrefixLength
	}
	if c.TrustedJA4Header != "" {
		c.TrustedJA4Header = textproto.CanonicalMIMEHeaderKey(c.TrustedJA4Header)
	}
}

// headerNameRe is an RFC 9110 §5.1 field-name (a token).
var headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if len(c.Components) == 0 {
		add("components", "at least one component is required (%s)", known())
	}
	for i, name := range c.Components {
		path := fmt.Sprintf("components[%d]", i)
		switch {
		case !slices.Contains(components[:], name):
			add(path, "%q is not a component (%s)", name, known())
		case slices.Index(c.Components, name) < i:
			add(path, "%q is listed twice", name)
		}
	}
	if c.IPv4PrefixLength < 1 || c.IPv4PrefixLength > 32 {
		add("ipv4_prefix_length", "must be 1 to 32, got %d", c.IPv4PrefixLength)
	}
	if c.IPv6PrefixLength < 1 || c.IPv6PrefixLength > 128 {
		add("ipv6_prefix_length", "must be 1 to 128, got %d", c.IPv6PrefixLength)
	}
	if c.TrustedJA4Header != "" && !headerNameRe.MatchString(c.TrustedJA4Header) {
		add("trusted_ja4_header", "%q is not a header name (letters, digits and - _ . and the like)", c.TrustedJA4Header)
	}
	return errors.Join(errs...)
}

// Known reports whether name is a fingerprint component.
func Known(name string) bool { return slices.Contains(components[:], name) }

func known() string {
	return ComponentJA4 + ", " + ComponentUserAgent + ", " + ComponentIPPrefix + ", " + ComponentAcceptLanguage
}

// has reports whether c binds the component name.
func (c *Config) has(name string) bool {
	return slices.Contains(c.Components, name)
}
