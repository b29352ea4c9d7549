package ratelimit

import (
	"crypto/sha256"
	"encoding/base64"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestKeyForIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{"ipv4", "203.0.113.7", "ip4:203.0.113.7"},
		{"ipv4-mapped ipv6 is the ipv4 address", "::ffff:203.0.113.7", "ip4:203.0.113.7"},
		{"ipv6 counts as its /64", "2001:db8:85a3:1:8a2e:370:7334:1", "ip6:20010db885a30001"},
		{"zone ignored", "fe80::1%eth0", "ip6:fe80000000000000"},
		{"ipv4-compatible ipv6 is not ipv4", "::203.0.113.7", "ip6:0000000000000000"},
		{"loopback", "::1", "ip6:0000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeyForIP(netip.MustParseAddr(tc.in)); got != tc.want {
				t.Errorf("KeyForIP(%s) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := KeyForIP(netip.Addr{}); got != "ip:invalid" {
		t.Errorf("KeyForIP(zero) = %q, want %q", got, "ip:invalid")
	}
}

func TestKeyForIPSharing(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		same bool
	}{
		{"same /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"next /64", "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"v4-mapped and v4", "::ffff:198.51.100.1", "198.51.100.1", true},
		{"neighbouring v4", "198.51.100.1", "198.51.100.2", false},
		{"zones", "fe80::1%eth0", "fe80::2%eth1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := KeyForIP(netip.MustParseAddr(tc.a)), KeyForIP(netip.MustParseAddr(tc.b))
			if (a == b) != tc.same {
				t.Errorf("KeyForIP(%s) = %q, KeyForIP(%s) = %q, want same %v", tc.a, a, tc.b, b, tc.same)
			}
		})
	}
}

func TestKeyFor(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, tc := range []struct {
		name     string
		kind, id string
		want     string
	}{
		{"plain", "user", "alice@example.com", "user:alice@example.com"},
		{"empty id", "user", "", "user:"},
		{"colon in id", "user", "a:b", "user:a%3Ab"},
		{"colon in kind", "user:", "a", "user%3A:a"},
		{"percent", "apikey", "100%3A", "apikey:100%253A"},
		{"hash sign", "service", "#x", "service:%23x"},
		{"longest plain", "user", strings.Repeat("a", 128), "user:" + strings.Repeat("a", 128)},
		{"too long once escaped", "user", strings.Repeat("a", 126) + ":", "user:#" + hashComponent(strings.Repeat("a", 126)+":")},
		{"long", "user", long, "user:#" + hashComponent(long)},
		{"space", "user", "a b", "user:#" + hashComponent("a b")},
		{"non-ascii", "user", "zoë", "user:#" + hashComponent("zoë")},
		{"control byte", "user", "a\x00", "user:#" + hashComponent("a\x00")},
		{"odd kind", "api key", "k1", "#" + hashComponent("api key") + ":k1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeyFor(tc.kind, tc.id); got != tc.want {
				t.Errorf("KeyFor(%q, %.40q) = %q, want %q", tc.kind, tc.id, got, tc.want)
			}
		})
	}
}

// Each of these names a different subject; a client choosing its id (or
// the route of its request) must not reach another's bucket.
func TestKeysDoNotCollide(t *testing.T) {
	long := strings.Repeat("x", 129)
	hashed := KeyFor("user", long)
	keys := map[string]string{}
	for _, tc := range []struct{ name, key string }{
		{`user "a"`, KeyFor("user", "a")},
		{`user "a:"`, KeyFor("user", "a:")},
		{`user ":a"`, KeyFor("user", ":a")},
		{`"user:" "a"`, KeyFor("user:", "a")},
		{`"us" "er:a"`, KeyFor("us", "er:a")},
		{`user "%3Aa"`, KeyFor("user", "%3Aa")},
		{`apikey "a"`, KeyFor("apikey", "a")},
		{`service "a"`, KeyFor("service", "a")},
		{`user long`, hashed},
		{`user "<the hash of long>"`, KeyFor("user", strings.TrimPrefix(hashed, "user:"))},
		{`user long+"y"`, KeyFor("user", long+"y")},
		{`route r, user "a"`, WithRoute("r", KeyFor("user", "a"))},
		{`route "r:user", "a"`, WithRoute("r:user", "a")},
		{`route "r" "user:a" as one id`, KeyFor("route", "r:user:a")},
		{`route "s", user "a"`, WithRoute("s", KeyFor("user", "a"))},
		{"ip 192.0.2.1", KeyForIP(netip.MustParseAddr("192.0.2.1"))},
		{"ip 2001:db8::/64", KeyForIP(netip.MustParseAddr("2001:db8::1"))},
		{"ip invalid", KeyForIP(netip.Addr{})},
		{`ip "192.0.2.1"`, KeyFor("ip", "192.0.2.1")},
	} {
		if other, dup := keys[tc.key]; dup {
			t.Errorf("%s and %s share key %q", tc.name, other, tc.key)
		}
		keys[tc.key] = tc.name
	}
}

func TestKeysBounded(t *testing.T) {
	for _, tc := range []struct{ name, kind, id string }{
		{"megabyte id", "user", strings.Repeat("a", 1<<20)},
		{"binary id", "apikey", "\x00\xff\n\r"},
		{"escapes everywhere", strings.Repeat(":", 100), strings.Repeat("%", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := WithRoute(tc.kind+tc.id, KeyFor(tc.kind, tc.id))
			if len(key) > MaxKeyLen {
				t.Errorf("WithRoute(KeyFor(%.20q, %.20q)) is %d bytes, want at most %d", tc.kind, tc.id, len(key), MaxKeyLen)
			}
			if i := strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }); i >= 0 {
				t.Errorf("WithRoute(KeyFor(%.20q, %.20q)) = %q has a byte outside printable ASCII at %d", tc.kind, tc.id, key, i)
			}
		})
	}
}

// FuzzKeyFor checks that keys are bounded printable ASCII, that each
// component decodes back to its input (or is its hash), and that two
// different subjects never share a key.
func FuzzKeyFor(f *testing.F) {
	f.Fuzz(func(t *testing.T, kind, id, kind2, id2 string) {
		key := KeyFor(kind, id)
		if len(key) > 2*maxPlain+1 {
			t.Fatalf("KeyFor(%q, %q) is %d bytes, want at most %d", kind, id, len(key), 2*maxPlain+1)
		}
		for i := 0; i < len(key); i++ {
			if c := key[i]; c < 0x21 || c > 0x7e {
				t.Fatalf("KeyFor(%q, %q) = %q has byte %#x", kind, id, key, c)
			}
		}
		parts := strings.Split(key, ":")
		if len(parts) != 2 {
			t.Fatalf("KeyFor(%q, %q) = %q has %d components, want 2", kind, id, key, len(parts))
		}
		for i, in := range []string{kind, id} {
			if strings.HasPrefix(parts[i], "#") {
				if want := "#" + hashComponent(in); parts[i] != want || plain(in) {
					t.Fatalf("KeyFor(%q, %q) = %q: component %d is %q, want %q, and only for inputs that cannot stay plain", kind, id, key, i, parts[i], want)
				}
				continue
			}
			if got, err := url.PathUnescape(parts[i]); err != nil || got != in {
				t.Fatalf("KeyFor(%q, %q) = %q: component %d decodes to %q (%v), want %q", kind, id, key, i, got, err, in)
			}
		}
		if key2 := KeyFor(kind2, id2); key2 == key && (kind2 != kind || id2 != id) {
			t.Fatalf("KeyFor(%q, %q) = KeyFor(%q, %q) = %q", kind, id, kind2, id2, key)
		}
		scoped := WithRoute(kind2, key)
		if len(scoped) > MaxKeyLen || strings.Count(scoped, ":") != 3 || !strings.HasSuffix(scoped, ":"+key) {
			t.Fatalf("WithRoute(%q, %q) = %q, want route:<component>:%s within %d bytes", kind2, key, scoped, key, MaxKeyLen)
		}
	})
}

func FuzzKeyForIP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, low uint64) {
		var a16 [16]byte
		copy(a16[:], b)
		addr := netip.AddrFrom16(a16)
		key := KeyForIP(addr)
		if addr.Is4In6() {
			if v4 := KeyForIP(addr.Unmap()); key != v4 {
				t.Fatalf("KeyForIP(%s) = %q, KeyForIP(%s) = %q, want equal", addr, key, addr.Unmap(), v4)
			}
			return
		}
		// Any address in the same /64 shares the key.
		for i := range 8 {
			a16[8+i] = byte(low >> (8 * i))
		}
		same := netip.AddrFrom16(a16)
		if same.Is4In6() {
			return // ::ffff:0:0/96 within ::/64 is IPv4
		}
		if other := KeyForIP(same); other != key {
			t.Fatalf("KeyForIP(%s) = %q, KeyForIP(%s) = %q, want equal", addr, key, same, other)
		}
	})
}

// hashComponent is what a hashed component holds after its '#'.
func hashComponent(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
