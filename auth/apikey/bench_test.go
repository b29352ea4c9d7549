package apikey

import (
	"context"
	"net/http/httptest"
	"testing"
)

// BenchmarkVerifyFile is Verify on the file store: a snapshot lookup, one
// HMAC, two constant-time comparisons and a copy of the record.
func BenchmarkVerifyFile(b *testing.B) {
	m := newManager(b, openFile(b, keyFile(b), FileOptions{}), newClock(), nil)
	k, _ := create(b, m, Spec{Name: "bench", Scopes: []string{"contacts:read", "deals:read"}, Tier: "gold"})
	ctx := context.Background()
	if _, err := m.Verify(ctx, k); err != nil { // record the use before timing
		b.Fatal(err)
	}
	m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFileUnknown is Verify of an unknown id: the same HMAC and
// comparisons against a dummy hash.
func BenchmarkVerifyFileUnknown(b *testing.B) {
	m := newManager(b, openFile(b, keyFile(b), FileOptions{}), newClock(), nil)
	create(b, m, Spec{})
	k := unknownKey(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, k); err == nil {
			b.Fatal("unknown key accepted")
		}
	}
}

// BenchmarkVerifyRedis is Verify on Redis: one round trip on loopback.
func BenchmarkVerifyRedis(b *testing.B) {
	_, c := startRedis(b)
	rt := &roundTrips{}
	c.AddHook(rt)
	m := newManager(b, NewRedisStore(c, RedisOptions{Prefix: "bench:"}), newClock(), nil)
	k, _ := create(b, m, Spec{Name: "bench", Scopes: []string{"contacts:read", "deals:read"}, Tier: "gold"})
	ctx := context.Background()
	if _, err := m.Verify(ctx, k); err != nil {
		b.Fatal(err)
	}
	m.Close()
	rt.n.Store(0)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Verify(ctx, k); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(rt.n.Load())/float64(n), "roundtrips/op")
}

func BenchmarkParse(b *testing.B) {
	k, _ := Generate()
	s := k.Plaintext()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtract is a typical API request: a dozen headers, the key in
// X-API-Key, three sources configured.
func BenchmarkExtract(b *testing.B) {
	k, _ := Generate()
	r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts?page=2", nil)
	for _, h := range [][2]string{
		{"Accept", "application/json"}, {"Accept-Encoding", "gzip"}, {"User-Agent", "export-job/1.4"},
		{"X-Request-Id", "5f0c3a"}, {"X-Forwarded-For", "203.0.113.7"}, {"Content-Type", "application/json"},
		{"Cache-Control", "no-cache"}, {"Connection", "keep-alive"}, {"Traceparent", "00-abc-def-01"},
		{"X-API-Key", k.Plaintext()},
	} {
		r.Header.Set(h[0], h[1])
	}
	sources := []Source{MustParseSource("header:X-API-Key"), MustParseSource("authorization:ApiKey"), MustParseSource("basic")}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Extract(r, sources); err != nil {
			b.Fatal(err)
		}
	}
}
