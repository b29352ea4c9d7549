package fingerprint

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"

	"github.com/crmgate/crmgate/scope"
)

// The cipher suites, extensions and signature algorithms of the worked
// example in the JA4 specification (FoxIO-LLC/ja4,
// technical_details/JA4.md, "Cipher hash", "Extension hash" and "Raw
// Output" with the original order), a Chrome ClientHello without GREASE.
var (
	specCiphers = []uint16{
		0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
		0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
	}
	specExtensions = []uint16{
		0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d,
		0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
	}
	specSigalgs = []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
)

// specHello is the specification's example as crypto/tls captures it: TLS
// 1.3 offered in supported_versions, SNI present, ALPN h2 first.
func specHello() *scope.ClientHello {
	return &scope.ClientHello{
		CipherSuites:      slices.Clone(specCiphers),
		SupportedCurves:   []uint16{0x001d, 0x0017, 0x0018},
		SupportedPoints:   []uint8{0},
		SignatureSchemes:  slices.Clone(specSigalgs),
		SupportedProtos:   []string{"h2", "http/1.1"},
		SupportedVersions: []uint16{0x0304, 0x0303},
		Extensions:        slices.Clone(specExtensions),
		ServerName:        "example.com",
	}
}

// chrome143Hello is a Chrome 143 (Android) ClientHello as captured by
// tls.browserleaks.com, GREASE included, in the order sent; the same
// capture reports JA4 t13d1516h2_8daaf6152771_d8a2da3f94cd.
func chrome143Hello() *scope.ClientHello {
	return &scope.ClientHello{
		CipherSuites: []uint16{
			0xaaaa, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030,
			0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
		},
		SupportedCurves:  []uint16{0x3a3a, 0x11ec, 0x001d, 0x0017, 0x0018},
		SupportedPoints:  []uint8{0},
		SignatureSchemes: slices.Clone(specSigalgs),
		SupportedProtos:  []string{"h2", "http/1.1"},
		// GREASE, TLS 1.3, TLS 1.2
		SupportedVersions: []uint16{0x6a6a, 0x0304, 0x0303},
		Extensions: []uint16{
			0x4a4a, 0x002d, 0x0033, 0x0010, 0xfe0d, 0x0017, 0x44cd, 0x0000, 0x000b,
			0x000a, 0x002b, 0xff01, 0x0023, 0x0012, 0x0005, 0x000d, 0x001b, 0x6a6a,
		},
		ServerName: "tls-outer.browserleaks.com",
	}
}

// ja4Re is the shape of every JA4 this package computes.
var ja4Re = regexp.MustCompile(`^t(13|12|11|10|s3|s2|s1|d1|d2|d3|00)[di][0-9]{4}[0-9A-Za-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$`)

func TestJA4Vectors(t *testing.T) {
	edit := func(f func(h *scope.ClientHello)) *scope.ClientHello {
		h := specHello()
		f(h)
		return h
	}
	for _, tc := range []struct {
		name  string
		hello *scope.ClientHello
		want  string
	}{
		// JA4.md "Example".
		{"specification example", specHello(), "t13d1516h2_8daaf6152771_e5627efa2ab1"},
		// JA4.md "Extension hash": without signature algorithms the
		// extension list is hashed alone, "= 6d807ffa2a79".
		{"specification example without signature algorithms", edit(func(h *scope.ClientHello) {
			h.SignatureSchemes = nil
		}), "t13d1516h2_8daaf6152771_6d807ffa2a79"},
		// FoxIO-LLC/ja4 rust/ja4/src/snapshots/ja4__insta@tls-handshake.pcapng.snap,
		// stream 5 (lp-push-server-452.lastpass.com): ALPN http/1.1 first, the
		// extensions in the order of python/test/testdata/tls-handshake.pcapng.json.
		{"tls-handshake.pcapng stream 5", edit(func(h *scope.ClientHello) {
			h.SupportedProtos = []string{"http/1.1"}
			h.Extensions = []uint16{
				0x000d, 0x0033, 0x0000, 0xff01, 0x002b, 0x0023, 0x002d, 0x0005,
				0x0012, 0x000b, 0x0017, 0x4469, 0x0010, 0x001b, 0x000a, 0x0015,
			}
		}), "t13d1516h1_8daaf6152771_e5627efa2ab1"},
		// The same snapshot, stream 6 (mtalk.google.com:5228): no ALPN
		// extension, no ALPS (0x4469).
		{"tls-handshake.pcapng stream 6", edit(func(h *scope.ClientHello) {
			h.SupportedProtos = nil
			h.Extensions = []uint16{
				0x0033, 0x002b, 0x001b, 0x0000, 0x0012, 0x002d, 0x000d, 0x000a,
				0x0005, 0x0023, 0x0017, 0xff01, 0x000b, 0x0015,
			}
		}), "t13d151400_8daaf6152771_de4a06bb82e3"},
		// The same snapshot, stream 31 (edge-chat.facebook.com): a resumed
		// session, pre_shared_key (0x0029) last.
		{"tls-handshake.pcapng stream 31, resumed", resumedHello(), "t13d1517h1_8daaf6152771_6cdcb247c39b"},
		{"chrome 143 with GREASE", chrome143Hello(), "t13d1516h2_8daaf6152771_d8a2da3f94cd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := JA4(tc.hello)
			if !ok || got != tc.want {
				t.Errorf("JA4() = %q, %v, want %q", got, ok, tc.want)
			}
		})
	}
}

// resumedHello is stream 31 of tls-handshake.pcapng: the client of stream
// 5 resuming its session.
func resumedHello() *scope.ClientHello {
	h := specHello()
	h.SupportedProtos = []string{"http/1.1"}
	h.Extensions = []uint16{
		0x0000, 0x0017, 0x0005, 0x002b, 0x0012, 0x0023, 0x000a, 0x0033, 0x0010,
		0x002d, 0x001b, 0x4469, 0x000b, 0x000d, 0xff01, 0x0015, 0x0029,
	}
	return h
}

// Regression: a browser resuming its TLS session adds pre_shared_key, which
// changes JA4; binding on JA4 would flag every resumption as a new client.
func TestStableJA4IgnoresResumption(t *testing.T) {
	full := specHello()
	full.SupportedProtos = []string{"http/1.1"}
	want, _ := JA4(full)
	resumed := resumedHello()
	resumed.Extensions = append(resumed.Extensions, extEarlyData)
	if got, _ := StableJA4(resumed); got != want {
		t.Errorf("StableJA4(resumed) = %q, want %q (JA4 of the full handshake)", got, want)
	}
	if got, _ := JA4(resumed); got == want {
		t.Errorf("JA4(resumed) = %q, the same as the full handshake; the vector no longer tests resumption", got)
	}
	for _, h := range []*scope.ClientHello{specHello(), chrome143Hello()} {
		a, _ := JA4(h)
		b, _ := StableJA4(h)
		if a != b {
			t.Errorf("StableJA4 = %q, JA4 = %q; want equal without resumption", b, a)
		}
	}
}

func TestJA4Nil(t *testing.T) {
	if got, ok := JA4(nil); ok || got != "" {
		t.Errorf("JA4(nil) = %q, %v, want \"\", false", got, ok)
	}
	if got, ok := StableJA4(nil); ok || got != "" {
		t.Errorf("StableJA4(nil) = %q, %v, want \"\", false", got, ok)
	}
}

// Chrome shuffles its extensions on every connection; JA4 sorts them, and
// the order of ciphers does not count either.
func TestJA4PermutationInvariant(t *testing.T) {
	want, _ := JA4(chrome143Hello())
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		h := chrome143Hello()
		rng.Shuffle(len(h.Extensions), func(i, j int) { h.Extensions[i], h.Extensions[j] = h.Extensions[j], h.Extensions[i] })
		rng.Shuffle(len(h.CipherSuites), func(i, j int) { h.CipherSuites[i], h.CipherSuites[j] = h.CipherSuites[j], h.CipherSuites[i] })
		if got, _ := JA4(h); got != want {
			t.Fatalf("permutation %d: JA4 = %q, want %q\nextensions %04x", i, got, want, h.Extensions)
		}
	}
	// Signature algorithms keep their order: it is part of the fingerprint.
	h := chrome143Hello()
	h.SignatureSchemes[0], h.SignatureSchemes[1] = h.SignatureSchemes[1], h.SignatureSchemes[0]
	if got, _ := JA4(h); got == want {
		t.Errorf("JA4 with swapped signature algorithms = %q, want a different value", got)
	}
}

// Clients insert random GREASE values (RFC 8701) into every list; none may
// change the fingerprint.
func TestJA4IgnoresGREASE(t *testing.T) {
	want, _ := JA4(specHello())
	greases := []uint16{0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a,
		0x8a8a, 0x9a9a, 0xaaaa, 0xbaba, 0xcaca, 0xdada, 0xeaea, 0xfafa}
	for _, g := range greases {
		h := specHello()
		h.CipherSuites = slices.Insert(h.CipherSuites, 0, g)
		h.Extensions = append(slices.Insert(h.Extensions, 0, g), g^0x1010)
		h.SignatureSchemes = slices.Insert(h.SignatureSchemes, 3, g)
		h.SupportedVersions = slices.Insert(h.SupportedVersions, 0, g)
		h.SupportedCurves = slices.Insert(h.SupportedCurves, 0, g)
		if got, _ := JA4(h); got != want {
			t.Errorf("JA4 with GREASE %#04x = %q, want %q", g, got, want)
		}
	}
	// Only the sixteen reserved values are GREASE.
	for _, v := range []uint16{0x1a2a, 0x0a0b, 0x0b0b, 0xa0a0} {
		if isGREASE(v) {
			t.Errorf("isGREASE(%#04x) = true", v)
		}
	}
	// Nothing but GREASE: a version of "00" and empty lists.
	h := &scope.ClientHello{
		CipherSuites: []uint16{0x0a0a}, Extensions: []uint16{0x1a1a},
		SignatureSchemes: []uint16{0x2a2a}, SupportedVersions: []uint16{0x3a3a},
	}
	if got, _ := JA4(h); got != "t00i000000_000000000000_000000000000" {
		t.Errorf("JA4(GREASE only) = %q", got)
	}
}

func TestJA4Prefix(t *testing.T) {
	edit := func(f func(h *scope.ClientHello)) *scope.ClientHello {
		h := specHello()
		f(h)
		return h
	}
	manyCiphers := make([]uint16, 120)
	for i := range manyCiphers {
		manyCiphers[i] = uint16(0x0100 + i)
	}
	for _, tc := range []struct {
		name  string
		hello *scope.ClientHello
		want  string // the first ten characters
	}{
		{"no SNI", edit(func(h *scope.ClientHello) {
			h.ServerName = ""
			h.Extensions = slices.DeleteFunc(h.Extensions, func(e uint16) bool { return e == extServerName })
		}), "t13i1515h2"},
		{"SNI extension without a host name crypto/tls kept", edit(func(h *scope.ClientHello) { h.ServerName = "" }), "t13d1516h2"},
		{"no ALPN", edit(func(h *scope.ClientHello) {
			h.SupportedProtos = nil
			h.Extensions = slices.DeleteFunc(h.Extensions, func(e uint16) bool { return e == extALPN })
		}), "t13d151500"},
		{"ALPN http/1.1", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"http/1.1", "h2"} }), "t13d1516h1"},
		{"ALPN single character", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"x"} }), "t13d1516xx"},
		{"ALPN empty first value", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"", "h2"} }), "t13d151600"},
		// JA4.md "ALPN Extension Value": non-alphanumeric first or last bytes.
		{"ALPN 0xab", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"\xab"} }), "t13d1516ab"},
		{"ALPN 0xab 0xcd", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"\xab\xcd"} }), "t13d1516ad"},
		{"ALPN 0x30 0xab", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"0\xab"} }), "t13d15163b"},
		{"ALPN 0x30 0x31 0xab 0xcd", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"01\xab\xcd"} }), "t13d15163d"},
		{"ALPN 0x30 0xab 0xcd 0x31", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"0\xab\xcd1"} }), "t13d151601"},
		{"ALPN with separator characters", edit(func(h *scope.ClientHello) { h.SupportedProtos = []string{"_x_"} }), "t13d15165f"},
		{"TLS 1.2 in supported_versions", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0x0303} }), "t12d1516h2"},
		// Without supported_versions crypto/tls lists the versions up to
		// the legacy version.
		{"TLS 1.2 legacy version", edit(func(h *scope.ClientHello) {
			h.SupportedVersions = []uint16{0x0303, 0x0302, 0x0301}
			h.Extensions = slices.DeleteFunc(h.Extensions, func(e uint16) bool { return e == extSupportedVersions })
		}), "t12d1515h2"},
		{"TLS 1.0", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0x0301} }), "t10d1516h2"},
		{"highest version, not the first", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0x0303, 0x0304} }), "t13d1516h2"},
		{"SSL 3.0", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0x0300} }), "ts3d1516h2"},
		{"DTLS 1.2 value", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0xfefd} }), "td2d1516h2"},
		{"unknown version", edit(func(h *scope.ClientHello) { h.SupportedVersions = []uint16{0x7f1c} }), "t00d1516h2"},
		{"no versions", edit(func(h *scope.ClientHello) { h.SupportedVersions = nil }), "t00d1516h2"},
		{"more than 99 ciphers", edit(func(h *scope.ClientHello) { h.CipherSuites = manyCiphers }), "t13d9916h2"},
		{"SCSV counts", edit(func(h *scope.ClientHello) { h.CipherSuites = append(h.CipherSuites, 0x00ff, 0x5600) }), "t13d1716h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := JA4(tc.hello)
			if !ja4Re.MatchString(got) {
				t.Fatalf("JA4() = %q, not a JA4", got)
			}
			if got[:10] != tc.want {
				t.Errorf("JA4() = %q, want prefix %q", got, tc.want)
			}
		})
	}
}

func TestJA4EmptyLists(t *testing.T) {
	// JA4.md: no ciphers gives JA4_b "000000000000", no extensions (once
	// SNI and ALPN are left out) gives JA4_c "000000000000".
	h := &scope.ClientHello{SupportedVersions: []uint16{0x0303}, Extensions: []uint16{extServerName, extALPN}, SupportedProtos: []string{"h2"}}
	if got, _ := JA4(h); got != "t12d0002h2_000000000000_000000000000" {
		t.Errorf("JA4() = %q, want t12d0002h2_000000000000_000000000000", got)
	}
	// The SNI and ALPN choice must not change the hashes.
	a := specHello()
	b := specHello()
	b.ServerName = ""
	b.Extensions = slices.DeleteFunc(b.Extensions, func(e uint16) bool { return e == extServerName || e == extALPN })
	b.SupportedProtos = nil
	ja, _ := JA4(a)
	jb, _ := JA4(b)
	if ja[10:] != jb[10:] {
		t.Errorf("hashes differ with and without SNI and ALPN: %q, %q", ja, jb)
	}
}

func TestValidJA4(t *testing.T) {
	for _, s := range []string{
		"t13d1516h2_8daaf6152771_e5627efa2ab1",
		"q13d0310h3_55b375c5d22e_cd85d2d88918",
		"t12i0000ad_000000000000_000000000000",
	} {
		if !validJA4(s) {
			t.Errorf("validJA4(%q) = false", s)
		}
	}
	for _, s := range []string{
		"",
		"t13d1516h2_8daaf6152771_e5627efa2ab",
		"t13d1516h2_8daaf6152771_e5627efa2ab1x",
		"x13d1516h2_8daaf6152771_e5627efa2ab1",
		"t13x1516h2_8daaf6152771_e5627efa2ab1",
		"t13d15a6h2_8daaf6152771_e5627efa2ab1",
		"t13d1516_2_8daaf6152771_e5627efa2ab1",
		"t13d1516h2-8daaf6152771_e5627efa2ab1",
		"t13d1516h2_8DAAF6152771_e5627efa2ab1",
		"t13d1516h2_8daaf6152771_e5627efa2ab\n",
	} {
		if validJA4(s) {
			t.Errorf("validJA4(%q) = true", s)
		}
	}
}
