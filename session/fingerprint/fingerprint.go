package fingerprint

import (
	"net/http"
	"net/netip"
	"slices"

	"github.com/crmgate/crmgate/scope"
)

// Fingerprint maps component names (ComponentJA4, ComponentUserAgent, …) to
// their values. It converts to and from session.Record's Fingerprint field
// as is. A component that could not be computed is absent; a nil or empty
// Fingerprint binds nothing.
type Fingerprint map[string]string

// Compute returns the fingerprint of a request for the components cfg
// binds: JA4 from hello (StableJA4; nil when the listener captured no
// ClientHello) or from cfg.TrustedJA4Header, the User-Agent and
// Accept-Language of r (which may be nil), and the network of clientIP.
// It returns nil when no component could be computed.
//
// Compute hashes the ClientHello on every call; on the request path use
// ComputeWithJA4 with the value computed once for the connection.
func Compute(cfg Config, hello *scope.ClientHello, r *http.Request, clientIP netip.Addr) Fingerprint {
	var ja4 string
	if cfg.TrustedJA4Header == "" && cfg.has(ComponentJA4) {
		ja4, _ = StableJA4(hello)
	}
	return ComputeWithJA4(cfg, ja4, r, clientIP)
}

// ComputeWithJA4 is Compute with the connection's JA4 already computed
// (StableJA4 of its ClientHello; "" when none was captured). When
// cfg.TrustedJA4Header is set, connJA4 is ignored: the gateway's own
// handshake is then with the proxy, not with the client.
func ComputeWithJA4(cfg Config, connJA4 string, r *http.Request, clientIP netip.Addr) Fingerprint {
	var fp Fingerprint
	set := func(name, value string) {
		if value == "" {
			return
		}
		if fp == nil {
			fp = make(Fingerprint, len(cfg.Components))
		}
		fp[name] = value
	}
	var h http.Header
	if r != nil {
		h = r.Header
	}
	for _, name := range cfg.Components {
		switch name {
		case ComponentJA4:
			if cfg.TrustedJA4Header == "" {
				set(name, connJA4)
			} else if v := h.Get(cfg.TrustedJA4Header); validJA4(v) {
				set(name, v)
			}
		case ComponentUserAgent:
			if ua := h.Get("User-Agent"); ua != "" {
				set(name, UserAgent(ua))
			}
		case ComponentIPPrefix:
			set(name, ipPrefix(clientIP, cfg.IPv4PrefixLength, cfg.IPv6PrefixLength))
		case ComponentAcceptLanguage:
			set(name, AcceptLanguage(h.Values("Accept-Language")...))
		}
	}
	return fp
}

// ipPrefix returns the network of a, as "203.0.113.0/24" or
// "2001:db8:1::/48"; "" for an invalid address. An IPv4-mapped IPv6 address
// is the IPv4 address it maps (a dual-stack listener reports IPv4 clients
// that way), and a zone is dropped.
func ipPrefix(a netip.Addr, v4bits, v6bits int) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap()
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// Compare compares the fingerprint of a request with the one bound at
// login. Only components present in bound are compared: one absent from
// bound was not available at login. A component present in bound but
// absent from now has changed, so that withholding a component does not
// help a client pass. changed lists the changed components sorted by name;
// it is nil when match is true. An empty bound matches anything.
//
// ip_prefix values of different lengths (the configured lengths changed
// since login) match when the shorter prefix contains the longer one.
func Compare(bound, now Fingerprint) (match bool, changed []string) {
	return compare(bound, now, nil)
}

// Compare is the package's Compare for the components c binds: a component
// bound at login that c no longer lists is not compared, so that removing
// a component from the configuration does not report it as changed on
// every existing session. It expects Defaults to have run; with no
// components listed it compares every bound component.
func (c Config) Compare(bound, now Fingerprint) (match bool, changed []string) {
	return compare(bound, now, c.Components)
}

// compare compares the components of bound (those in only, when only is
// not nil).
func compare(bound, now Fingerprint, only []string) (bool, []string) {
	var changed []string
	known := 0
	for _, name := range components {
		b, ok := bound[name]
		if !ok {
			continue
		}
		known++
		if only != nil && !slices.Contains(only, name) {
			continue
		}
		if n, ok := now[name]; !ok || !sameValue(name, b, n) {
			if changed == nil {
				changed = make([]string, 0, len(bound))
			}
			changed = append(changed, name)
		}
	}
	if known < len(bound) {
		// Components this version does not know (bound by a newer one):
		// compared as opaque values, unless the configuration leaves
		// them out, which it must when it cannot name them.
		extra := false
		for name, b := range bound {
			if slices.Contains(components[:], name) || only != nil && !slices.Contains(only, name) {
				continue
			}
			if n, ok := now[name]; !ok || n != b {
				changed = append(changed, name)
				extra = true
			}
		}
		if extra {
			slices.Sort(changed)
		}
	}
	return len(changed) == 0, changed
}

func sameValue(name, bound, now string) bool {
	if bound == now {
		return true
	}
	if name != ComponentIPPrefix {
		return false
	}
	b, err1 := netip.ParsePrefix(bound)
	n, err2 := netip.ParsePrefix(now)
	if err1 != nil || err2 != nil || b.Bits() == n.Bits() {
		return false
	}
	if b.Bits() < n.Bits() {
		return b.Contains(n.Addr())
	}
	return n.Contains(b.Addr())
}
