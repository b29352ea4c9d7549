package fingerprint

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/scope"
)

// decodeUint16s reads big-endian pairs; an odd last byte is dropped.
func decodeUint16s(b []byte) []uint16 {
	out := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		out = append(out, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return out
}

// decodeProtos reads length-prefixed ALPN protocol names, as on the wire.
func decodeProtos(b []byte) []string {
	var out []string
	for len(b) > 0 {
		n := min(int(b[0]), len(b)-1)
		out = append(out, string(b[1:1+n]))
		b = b[1+n:]
	}
	return out
}

func FuzzJA4(f *testing.F) {
	f.Add([]byte{0x13, 0x01, 0xaa, 0xaa}, []byte{0x00, 0x1d}, []byte{0}, []byte{0x04, 0x03},
		[]byte{2, 'h', '2'}, []byte{0x03, 0x04}, []byte{0x00, 0x00, 0x00, 0x10, 0x00, 0x2b}, "example.com")
	f.Fuzz(func(t *testing.T, ciphers, curves, points, sigs, protos, versions, exts []byte, sni string) {
		h := &scope.ClientHello{
			CipherSuites:      decodeUint16s(ciphers),
			SupportedCurves:   decodeUint16s(curves),
			SupportedPoints:   points,
			SignatureSchemes:  decodeUint16s(sigs),
			SupportedProtos:   decodeProtos(protos),
			SupportedVersions: decodeUint16s(versions),
			Extensions:        decodeUint16s(exts),
			ServerName:        sni,
		}
		got, ok := JA4(h)
		if !ok || !ja4Re.MatchString(got) || !validJA4(got) {
			t.Fatalf("JA4() = %q, %v; not a JA4", got, ok)
		}
		stable, ok := StableJA4(h)
		if !ok || !ja4Re.MatchString(stable) {
			t.Fatalf("StableJA4() = %q, %v; not a JA4", stable, ok)
		}
		if !slices.Contains(h.Extensions, extPreSharedKey) && !slices.Contains(h.Extensions, extEarlyData) && stable != got {
			t.Fatalf("StableJA4() = %q, JA4() = %q; want equal without resumption extensions", stable, got)
		}
		// Order of extensions and ciphers, and GREASE anywhere, must not count.
		slices.Reverse(h.Extensions)
		slices.Reverse(h.CipherSuites)
		h.Extensions = append(h.Extensions, 0x0a0a)
		h.CipherSuites = slices.Insert(h.CipherSuites, 0, 0xfafa)
		h.SignatureSchemes = append(h.SignatureSchemes, 0x5a5a)
		h.SupportedVersions = append(h.SupportedVersions, 0xeaea)
		if again, _ := JA4(h); again != got {
			t.Fatalf("JA4() after reordering and GREASE = %q, want %q", again, got)
		}
	})
}

var userAgentRe = regexp.MustCompile(`^[a-z-]+(/[0-9]{1,5})?$`)

var userAgentFamilies = []string{
	"chrome", "curl", "edge", "firefox", "go-http-client", "okhttp", "opera",
	"other", "python-requests", "safari", "samsung", "wget",
}

func FuzzUserAgent(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
	f.Add("curl/8.5.0")
	f.Fuzz(func(t *testing.T, ua string) {
		got := UserAgent(ua)
		if !userAgentRe.MatchString(got) {
			t.Fatalf("UserAgent(%q) = %q, not family/major", ua, got)
		}
		family, _, _ := strings.Cut(got, "/")
		if !slices.Contains(userAgentFamilies, family) {
			t.Fatalf("UserAgent(%q) = %q, unknown family", ua, got)
		}
		if len(ua) > maxUserAgentScan && UserAgent(ua[:maxUserAgentScan]) != got {
			t.Fatalf("UserAgent(%q) looked past the first %d bytes", ua, maxUserAgentScan)
		}
	})
}

var acceptLanguageRe = regexp.MustCompile(`^([a-z]{1,8}(,[a-z]{1,8}){0,2})?$`)

func FuzzAcceptLanguage(f *testing.F) {
	f.Add("de-CH,de;q=0.9,en;q=0.8,fr;q=0.7")
	f.Fuzz(func(t *testing.T, v string) {
		got := AcceptLanguage(v)
		if !acceptLanguageRe.MatchString(got) {
			t.Fatalf("AcceptLanguage(%q) = %q, not a list of up to three subtags", v, got)
		}
		tags := strings.Split(got, ",")
		slices.Sort(tags)
		if got != "" && len(slices.Compact(tags)) != strings.Count(got, ",")+1 {
			t.Fatalf("AcceptLanguage(%q) = %q, repeats a language", v, got)
		}
	})
}
