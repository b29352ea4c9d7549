package fingerprint

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/scope"
)

// Fingerprint is stored in session.Record.Fingerprint as is.
var _ map[string]string = Fingerprint(nil)

const (
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
	firefoxUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
	chromeJA4 = "t13d1516h2_8daaf6152771_d8a2da3f94cd" // StableJA4(chrome143Hello())
)

func defaultConfig() Config {
	var c Config
	c.Defaults()
	return c
}

func browserRequest(headers ...string) *http.Request {
	r := httptest.NewRequest("GET", "https://crm.example.com/", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestCompute(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.77")
	withLang := defaultConfig()
	withLang.Components = append(withLang.Components, ComponentAcceptLanguage)
	trusted := defaultConfig()
	trusted.TrustedJA4Header = "X-JA4"
	trusted.Defaults()
	onlyIP := defaultConfig()
	onlyIP.Components = []string{ComponentIPPrefix}
	const lbJA4 = "t13d1517h2_8daaf6152771_b1ff8ab2d16f"

	for _, tc := range []struct {
		name  string
		cfg   Config
		hello *scope.ClientHello
		r     *http.Request
		ip    netip.Addr
		want  Fingerprint
	}{
		{"defaults", defaultConfig(), chrome143Hello(), browserRequest("User-Agent", chromeUA, "Accept-Language", "de-CH,de;q=0.9"), ip,
			Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
		{"accept_language configured", withLang, chrome143Hello(), browserRequest("User-Agent", chromeUA, "Accept-Language", "de-CH,de;q=0.9"), ip,
			Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24", "accept_language": "de"}},
		{"accept_language missing", withLang, chrome143Hello(), browserRequest("User-Agent", chromeUA), ip,
			Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
		// Behind a TLS-terminating load balancer without a JA4 header.
		{"no ClientHello", defaultConfig(), nil, browserRequest("User-Agent", chromeUA), ip,
			Fingerprint{"user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
		{"no User-Agent", defaultConfig(), chrome143Hello(), browserRequest(), ip,
			Fingerprint{"ja4": chromeJA4, "ip_prefix": "203.0.113.0/24"}},
		{"garbage User-Agent", defaultConfig(), nil, browserRequest("User-Agent", "\x01\x02"), ip,
			Fingerprint{"user_agent": "other", "ip_prefix": "203.0.113.0/24"}},
		{"no client address", defaultConfig(), nil, browserRequest("User-Agent", chromeUA), netip.Addr{},
			Fingerprint{"user_agent": "chrome/130"}},
		{"nil request", defaultConfig(), chrome143Hello(), nil, ip,
			Fingerprint{"ja4": chromeJA4, "ip_prefix": "203.0.113.0/24"}},
		{"nothing computable", defaultConfig(), nil, nil, netip.Addr{}, nil},
		{"only ip_prefix configured", onlyIP, chrome143Hello(), browserRequest("User-Agent", chromeUA), ip,
			Fingerprint{"ip_prefix": "203.0.113.0/24"}},
		// The gateway's own handshake is with the proxy: its ClientHello
		// must not stand in for the client's.
		{"trusted header", trusted, chrome143Hello(), browserRequest("X-Ja4", lbJA4, "User-Agent", chromeUA), ip,
			Fingerprint{"ja4": lbJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
		{"trusted header missing", trusted, chrome143Hello(), browserRequest("User-Agent", chromeUA), ip,
			Fingerprint{"user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
		{"trusted header malformed", trusted, nil, browserRequest("X-JA4", "t13d1516h2_<script>", "User-Agent", chromeUA), ip,
			Fingerprint{"user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(tc.cfg, tc.hello, tc.r, tc.ip)
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("Compute (-got +want):\n%s", d)
			}
			var connJA4 string
			if tc.hello != nil {
				connJA4, _ = StableJA4(tc.hello)
			}
			if d := cmp.Diff(ComputeWithJA4(tc.cfg, connJA4, tc.r, tc.ip), tc.want); d != "" {
				t.Errorf("ComputeWithJA4 (-got +want):\n%s", d)
			}
		})
	}
}

func TestIPPrefix(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		v4, v6 int
		want   string
	}{
		{"203.0.113.77", 24, 48, "203.0.113.0/24"},
		{"2001:db8:1:2::5", 24, 48, "2001:db8:1::/48"},
		// A dual-stack listener reports IPv4 clients as IPv4-mapped.
		{"::ffff:203.0.113.77", 24, 48, "203.0.113.0/24"},
		{"fe80::1%eth0", 24, 48, "fe80::/48"},
		{"203.0.113.77", 16, 64, "203.0.0.0/16"},
		{"2001:db8:1:2::5", 16, 64, "2001:db8:1:2::/64"},
		{"203.0.113.77", 32, 128, "203.0.113.77/32"},
		{"::ffff:203.0.113.77", 32, 128, "203.0.113.77/32"},
	} {
		if got := ipPrefix(netip.MustParseAddr(tc.addr), tc.v4, tc.v6); got != tc.want {
			t.Errorf("ipPrefix(%s, %d, %d) = %q, want %q", tc.addr, tc.v4, tc.v6, got, tc.want)
		}
	}
	if got := ipPrefix(netip.Addr{}, 24, 48); got != "" {
		t.Errorf("ipPrefix(zero) = %q, want \"\"", got)
	}
	// Out-of-range lengths (a Config that skipped Validate) give nothing
	// rather than a wrong network.
	if got := ipPrefix(netip.MustParseAddr("203.0.113.77"), 33, 48); got != "" {
		t.Errorf("ipPrefix(/33) = %q, want \"\"", got)
	}
	// The same client over IPv4 and IPv4-mapped IPv6 is the same network.
	cfg := defaultConfig()
	a := Compute(cfg, nil, nil, netip.MustParseAddr("198.51.100.1"))
	b := Compute(cfg, nil, nil, netip.MustParseAddr("::ffff:198.51.100.200"))
	if ok, changed := Compare(a, b); !ok {
		t.Errorf("Compare(v4, mapped) changed %q", changed)
	}
}

func TestCompare(t *testing.T) {
	bound := Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24", "accept_language": "de"}
	with := func(kv ...string) Fingerprint {
		f := Fingerprint{}
		for k, v := range bound {
			f[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(f, kv[i])
			} else {
				f[kv[i]] = kv[i+1]
			}
		}
		return f
	}
	for _, tc := range []struct {
		name        string
		bound, now  Fingerprint
		wantMatch   bool
		wantChanged []string
	}{
		{"same", bound, with(), true, nil},
		{"nothing bound", nil, with(), true, nil},
		{"empty bound", Fingerprint{}, with(), true, nil},
		{"nothing bound, nothing now", nil, nil, true, nil},
		{"ja4", bound, with("ja4", "t13d1715h2_5b57614c22b0_3d5424432f57"), false, []string{"ja4"}},
		{"user agent and network", bound, with("user_agent", "firefox/128", "ip_prefix", "198.51.100.0/24"), false, []string{"ip_prefix", "user_agent"}},
		{"everything", bound, Fingerprint{"ja4": "x", "user_agent": "y", "ip_prefix": "z", "accept_language": "w"}, false,
			[]string{"accept_language", "ip_prefix", "ja4", "user_agent"}},
		// Stripping a component must not help a replayed cookie.
		{"bound ja4 now absent", bound, with("ja4", ""), false, []string{"ja4"}},
		{"bound user agent now absent", bound, with("user_agent", ""), false, []string{"user_agent"}},
		{"everything absent now", bound, nil, false, []string{"accept_language", "ip_prefix", "ja4", "user_agent"}},
		// Not available at login: nothing to compare with.
		{"ja4 not bound", Fingerprint{"user_agent": "chrome/130"}, with(), true, nil},
		{"more now than bound", Fingerprint{"ip_prefix": "203.0.113.0/24"}, with("ja4", "other"), true, nil},
		{"network from IPv4 to IPv6", bound, with("ip_prefix", "2001:db8:1::/48"), false, []string{"ip_prefix"}},
		// The configured prefix lengths changed since login.
		{"shorter prefix now, same network", bound, with("ip_prefix", "203.0.0.0/16"), true, nil},
		{"longer prefix now, same network", bound, with("ip_prefix", "203.0.113.77/32"), true, nil},
		{"shorter prefix now, other network", bound, with("ip_prefix", "198.51.0.0/16"), false, []string{"ip_prefix"}},
		{"longer prefix now, other network", bound, with("ip_prefix", "203.0.114.1/32"), false, []string{"ip_prefix"}},
		{"malformed prefix", Fingerprint{"ip_prefix": "x"}, Fingerprint{"ip_prefix": "y"}, false, []string{"ip_prefix"}},
		// A component this version does not know, bound by a newer one.
		{"unknown component same", Fingerprint{"ja4": "a", "zz_device": "1"}, Fingerprint{"ja4": "a", "zz_device": "1"}, true, nil},
		{"unknown components changed, sorted", Fingerprint{"ja4": "a", "b_thing": "1", "zz_device": "1", "user_agent": "u"},
			Fingerprint{"ja4": "b", "zz_device": "2", "user_agent": "v"}, false, []string{"b_thing", "ja4", "user_agent", "zz_device"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			match, changed := Compare(tc.bound, tc.now)
			if match != tc.wantMatch {
				t.Errorf("Compare() match = %v, want %v", match, tc.wantMatch)
			}
			if d := cmp.Diff(changed, tc.wantChanged); d != "" {
				t.Errorf("Compare() changed (-got +want):\n%s", d)
			}
		})
	}
}

// Regression: removing a component from the configuration must not report
// it as changed on every session bound before.
func TestConfigCompare(t *testing.T) {
	cfg := defaultConfig()
	cfg.Components = []string{ComponentJA4}
	bound := Fingerprint{"ja4": "a", "user_agent": "chrome/130", "zz_device": "1"}
	now := Fingerprint{"ja4": "a", "user_agent": UserAgent(firefoxUA)}
	if match, changed := cfg.Compare(bound, now); !match {
		t.Errorf("Config.Compare() = false, %q, want true", changed)
	}
	now["ja4"] = "b"
	if match, changed := cfg.Compare(bound, now); match || !cmp.Equal(changed, []string{"ja4"}) {
		t.Errorf("Config.Compare() = %v, %q, want false, [ja4]", match, changed)
	}
	if match, changed := Compare(bound, now); match || !cmp.Equal(changed, []string{"ja4", "user_agent", "zz_device"}) {
		t.Errorf("Compare() = %v, %q, want false, [ja4 user_agent zz_device]", match, changed)
	}
}

// The login and a later request of one browser match; a replay of its
// cookie from curl on another network does not.
func TestBindingScenario(t *testing.T) {
	cfg := defaultConfig()
	login := Compute(cfg, chrome143Hello(), browserRequest("User-Agent", chromeUA), netip.MustParseAddr("203.0.113.7"))

	// The same browser on a new connection: extensions shuffled, a fresh
	// GREASE value, the TLS session resumed, another address in the same /24.
	h := chrome143Hello()
	h.Extensions[0], h.Extensions[len(h.Extensions)-1] = 0xdada, 0x8a8a
	h.Extensions = append(h.Extensions[1:], h.Extensions[0], extPreSharedKey)
	later := Compute(cfg, h, browserRequest("User-Agent", chromeUA), netip.MustParseAddr("203.0.113.99"))
	if match, changed := Compare(login, later); !match {
		t.Errorf("same browser: changed %q", changed)
	}

	curl := &scope.ClientHello{
		CipherSuites:      []uint16{0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x009e},
		SignatureSchemes:  []uint16{0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601},
		SupportedProtos:   []string{"h2", "http/1.1"},
		SupportedVersions: []uint16{0x0304, 0x0303},
		Extensions:        []uint16{0x0000, 0x000b, 0x000a, 0x0010, 0x0016, 0x0017, 0x0031, 0x000d, 0x002b, 0x002d, 0x0033},
		ServerName:        "crm.example.com",
	}
	replay := Compute(cfg, curl, browserRequest("User-Agent", chromeUA), netip.MustParseAddr("198.51.100.23"))
	match, changed := Compare(login, replay)
	if match || !cmp.Equal(changed, []string{"ip_prefix", "ja4"}) {
		t.Errorf("replay from curl: Compare() = %v, %q, want false, [ip_prefix ja4]", match, changed)
	}
}
