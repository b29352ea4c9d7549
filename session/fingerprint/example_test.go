package fingerprint_test

import (
	"fmt"
	"net/http/httptest"
	"net/netip"

	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// At login the gateway binds the session to the client's fingerprint; on
// a later request it tells the policy what changed.
func Example() {
	var cfg fingerprint.Config
	cfg.Defaults()

	// Login: the ClientHello the listener captured, and the callback request.
	hello := &scope.ClientHello{
		CipherSuites:      []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f},
		SignatureSchemes:  []uint16{0x0403, 0x0804, 0x0401},
		SupportedProtos:   []string{"h2", "http/1.1"},
		SupportedVersions: []uint16{0x0304, 0x0303},
		Extensions:        []uint16{0x0000, 0x0010, 0x000a, 0x000d, 0x002b, 0x0033},
		ServerName:        "crm.example.com",
	}
	r := httptest.NewRequest("GET", "https://crm.example.com/callback", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	bound := fingerprint.Compute(cfg, hello, r, netip.MustParseAddr("203.0.113.7"))
	fmt.Println(bound[fingerprint.ComponentJA4], bound[fingerprint.ComponentUserAgent], bound[fingerprint.ComponentIPPrefix])

	// A request with the session cookie, from the same browser on another
	// network. The connection's JA4 was computed once, at its handshake.
	connJA4, _ := fingerprint.StableJA4(hello)
	now := fingerprint.ComputeWithJA4(cfg, connJA4, r, netip.MustParseAddr("198.51.100.20"))
	fmt.Println(cfg.Compare(bound, now))
	// Output:
	// t13d0506h2_e133e205ac38_5d4d534e3685 firefox/128 203.0.113.0/24
	// false [ip_prefix]
}
