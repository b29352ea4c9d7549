package policy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// benchRequest is one request of the benchmark mix.
type benchRequest struct {
	s *scope.Scope
	r *http.Request
}

// benchMix is a realistic mix of the demo's traffic: mostly signed-in
// users reading lists and records (allowed, filtered, redacted), some
// writes, API-key integrations, public diagnostics, step-ups and denies.
func benchMix() []benchRequest {
	subs := demoSubjects()
	type req struct {
		who, method, route, path string
		weight                   int
	}
	reqs := []req{
		{"alice", "GET", "contacts.list", "/api/contacts?page=2&per_page=50", 8},
		{"alice", "GET", "contacts.item", "/api/contacts/42", 6},
		{"alice", "PUT", "contacts.item", "/api/contacts/42", 2},
		{"alice", "GET", "deals.list", "/api/deals", 4},
		{"alice", "GET", "invoices.list", "/api/invoices", 1},
		{"bob", "GET", "invoices.list", "/api/invoices", 5},
		{"bob", "GET", "contacts.list", "/api/contacts?q=acme", 3},
		{"dave", "GET", "contacts.list", "/api/contacts", 4},
		{"dave", "GET", "contacts.item", "/api/contacts/7", 3},
		{"dave", "PUT", "contacts.item", "/api/contacts/7", 1},
		{"carol", "GET", "contacts.list", "/api/contacts", 2},
		{"carol", "DELETE", "contacts.item", "/api/contacts/9", 1},
		{"carol_mfa", "DELETE", "contacts.item", "/api/contacts/9", 1},
		{"carol_mfa", "GET", "admin.users", "/api/admin/users", 1},
		{"carol_mfa", "GET", "export.contacts", "/api/export/contacts", 1},
		{"carol", "GET", "crm.home", "/", 2},
		{"key_read", "GET", "contacts.list", "/api/contacts", 5},
		{"key_read", "GET", "deals.list", "/api/deals", 3},
		{"key_write", "POST", "contacts.list", "/api/contacts", 2},
		{"key_read", "PUT", "contacts.item", "/api/contacts/1", 1},
		{"service", "GET", "invoices.list", "/api/invoices", 1},
		{"anonymous", "GET", "whoami", "/api/whoami", 2},
		{"anonymous", "GET", "contacts.list", "/api/contacts", 2},
	}
	var mix []benchRequest
	for _, q := range reqs {
		s := demoScope(q.method, q.route, q.path, subs[q.who])
		r := httptest.NewRequest(q.method, "https://crm.example.com"+q.path, nil)
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36")
		r.Header.Set("Accept", "application/json")
		r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
		r.Header.Set("Cookie", "__Host-crmgate=opaque")
		for range q.weight {
			mix = append(mix, benchRequest{s, r})
		}
	}
	// A fixed interleaving, so that consecutive decisions differ.
	out := make([]benchRequest, len(mix))
	for i := range mix {
		out[i] = mix[(i*7)%len(mix)]
	}
	return out
}

// reportLatency reports the median and 99th percentile of per-operation
// timings.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)*50/100].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDecide measures one decision of the shipped policies on an
// input already built, over the mix.
func BenchmarkDecide(b *testing.B) {
	e := evalEngine(b)
	mix := benchMix()
	ins := make([]*Input, len(mix))
	for i, m := range mix {
		ins[i] = e.Input(m.s, m.r)
		if d := e.Decide(context.Background(), ins[i], ""); d.Failed() {
			b.Fatalf("mix[%d]: %s: %s", i, d.Reason, d.Error)
		}
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		d := e.Decide(ctx, ins[i%len(ins)], "")
		lat = append(lat, time.Since(t0))
		if d.Failed() {
			b.Fatal(d.Error)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkDecideParallel is BenchmarkDecide from every CPU at once.
func BenchmarkDecideParallel(b *testing.B) {
	e := evalEngine(b)
	mix := benchMix()
	ins := make([]*Input, len(mix))
	for i, m := range mix {
		ins[i] = e.Input(m.s, m.r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e.Decide(context.Background(), ins[i%len(ins)], "")
			i++
		}
	})
}

// BenchmarkInput measures building the input of a request, conversion to
// OPA's values included.
func BenchmarkInput(b *testing.B) {
	e := evalEngine(b)
	mix := benchMix()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := mix[i%len(mix)]
		t0 := time.Now()
		in := e.Input(m.s, m.r)
		lat = append(lat, time.Since(t0))
		if in.Err() != nil {
			b.Fatal(in.Err())
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkInputAndDecide is what the gateway does per request: build the
// input, then decide.
func BenchmarkInputAndDecide(b *testing.B) {
	e := evalEngine(b)
	mix := benchMix()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := mix[i%len(mix)]
		t0 := time.Now()
		d := e.Decide(ctx, e.Input(m.s, m.r), "")
		lat = append(lat, time.Since(t0))
		if d.Failed() {
			b.Fatal(d.Error)
		}
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// BenchmarkDecideMinimal is the engine's own cost per decision: a policy
// of one rule, so that what BenchmarkDecide adds is the shipped policy's
// evaluation.
func BenchmarkDecideMinimal(b *testing.B) {
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"p.rego": "package p\n\ndecision := {\"allow\": input.subject.kind == \"user\", \"reason\": \"minimal\"}\n"})
	cfg := testConfig(dir, "data.p.decision")
	cfg.Reuse = ReuseOff
	e := newEngine(b, cfg, Options{})
	mix := benchMix()
	ins := make([]*Input, len(mix))
	for i, m := range mix {
		ins[i] = e.Input(m.s, m.r)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e.Decide(ctx, ins[i%len(ins)], "")
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// evalEngine is shippedEngine without decision reuse: the benchmarks
// measure evaluation (BenchmarkDecideReused measures reuse).
func evalEngine(b *testing.B) *Engine {
	b.Helper()
	cfg := testConfig(shippedDir, "")
	cfg.EvalTimeout = 5 * time.Second
	cfg.Reuse = ReuseOff
	return newEngine(b, cfg, Options{})
}
