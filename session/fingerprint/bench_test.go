package fingerprint

import (
	"net/netip"
	"testing"
)

// JA4 runs once per connection.
func BenchmarkJA4(b *testing.B) {
	h := chrome143Hello()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := JA4(h); !ok {
			b.Fatal("no JA4")
		}
	}
}

// Compute with a ClientHello: what a login costs.
func BenchmarkCompute(b *testing.B) {
	cfg := defaultConfig()
	h := chrome143Hello()
	r := browserRequest("User-Agent", chromeUA, "Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
	ip := netip.MustParseAddr("203.0.113.77")
	b.ReportAllocs()
	for b.Loop() {
		Compute(cfg, h, r, ip)
	}
}

// The request path: the connection's JA4 is known; the request's
// components are computed and compared with the bound ones.
func BenchmarkComputeWithJA4(b *testing.B) {
	cfg := defaultConfig()
	cfg.Components = append(cfg.Components, ComponentAcceptLanguage)
	r := browserRequest("User-Agent", chromeUA, "Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
	ip := netip.MustParseAddr("203.0.113.77")
	b.ReportAllocs()
	for b.Loop() {
		ComputeWithJA4(cfg, chromeJA4, r, ip)
	}
}

func BenchmarkCompare(b *testing.B) {
	bound := Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}
	b.Run("match", func(b *testing.B) {
		now := Fingerprint{"ja4": chromeJA4, "user_agent": "chrome/130", "ip_prefix": "203.0.113.0/24"}
		b.ReportAllocs()
		for b.Loop() {
			if ok, _ := Compare(bound, now); !ok {
				b.Fatal("no match")
			}
		}
	})
	b.Run("changed", func(b *testing.B) {
		now := Fingerprint{"ja4": "t13d1715h2_5b57614c22b0_3d5424432f57", "user_agent": "curl/8", "ip_prefix": "198.51.100.0/24"}
		b.ReportAllocs()
		for b.Loop() {
			if ok, _ := Compare(bound, now); ok {
				b.Fatal("match")
			}
		}
	})
}

func BenchmarkUserAgent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		UserAgent(chromeUA)
	}
}

// BenchmarkRequest is the whole per-request cost: ComputeWithJA4 and
// Compare.
func BenchmarkRequest(b *testing.B) {
	cfg := defaultConfig()
	r := browserRequest("User-Agent", chromeUA)
	ip := netip.MustParseAddr("203.0.113.77")
	bound := ComputeWithJA4(cfg, chromeJA4, r, ip)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := cfg.Compare(bound, ComputeWithJA4(cfg, chromeJA4, r, ip)); !ok {
			b.Fatal("no match")
		}
	}
}
