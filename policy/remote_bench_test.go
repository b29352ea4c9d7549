package policy

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/opatest"
	"github.com/crmgate/crmgate/scope"
)

// BenchmarkRemote compares a decision of the shipped policies made by the
// embedded engine with the same decision asked of an OPA server (`opa run
// --server`, the sidecar setup) over loopback TCP and over a Unix socket:
// what the gateway does per request in each mode, building the input
// included. Besides time, each reports cpu-ns/op: the CPU time of this
// process and, for a server, of the OPA process too (Linux), per
// decision; a server's line also reports its p50 and CPU as multiples of
// the embedded engine's (p50-x-embedded, cpu-x-embedded), which -v logs
// in words.
//
//	go test -run '^$' -bench BenchmarkRemote -benchtime 3s ./policy
func BenchmarkRemote(b *testing.B) {
	emb := shippedEngine(b)
	tcp := opatest.Start(b, opatest.Options{Paths: []string{shippedDir}})
	unix := opatest.Start(b, opatest.Options{Paths: []string{shippedDir}, Socket: true})
	remTCP := newRemote(b, tcp.URL, nil, Options{})
	remUnix := newRemote(b, unix.URL, nil, Options{})
	mix := benchMix()

	type result struct{ p50, p99, cpu float64 }
	results := map[string]result{}
	run := func(name string, d interface {
		Input(*scope.Scope, *http.Request) *Input
		Decide(context.Context, *Input, string) Decision
	}, serverPID int) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			for _, m := range mix { // warm the connection pool and OPA
				if dec := d.Decide(ctx, d.Input(m.s, m.r), ""); dec.Failed() {
					b.Fatalf("%s: %s", dec.Reason, dec.Error)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			cpu0 := processCPU() + childCPU(serverPID)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := mix[i%len(mix)]
				t0 := time.Now()
				dec := d.Decide(ctx, d.Input(m.s, m.r), "")
				lat = append(lat, time.Since(t0))
				if dec.Failed() {
					b.Fatalf("%s: %s", dec.Reason, dec.Error)
				}
			}
			b.StopTimer()
			cpu := float64(processCPU()+childCPU(serverPID)-cpu0) / float64(b.N)
			reportLatency(b, lat)
			b.ReportMetric(cpu, "cpu-ns/op")
			slices.Sort(lat)
			r := result{float64(lat[len(lat)/2]), float64(lat[len(lat)*99/100]), cpu}
			results[name] = r
			if e, ok := results["embedded"]; ok && name != "embedded" && e.p50 > 0 && e.cpu > 0 {
				b.ReportMetric(r.p50/e.p50, "p50-x-embedded")
				b.ReportMetric(r.cpu/e.cpu, "cpu-x-embedded")
			}
		})
	}
	run("embedded", emb, 0)
	run("server-tcp", remTCP, tcp.PID())
	run("server-unix", remUnix, unix.PID())
	e := results["embedded"]
	for _, name := range []string{"server-tcp", "server-unix"} {
		s, ok := results[name]
		if !ok || e.p50 == 0 || e.cpu == 0 {
			continue
		}
		b.Logf("%s ÷ embedded: p50 %.1f×, p99 %.1f×, CPU %.1f× (embedded p50 %.0f µs, CPU %.0f µs; %s p50 %.0f µs, CPU %.0f µs)",
			name, s.p50/e.p50, s.p99/e.p99, s.cpu/e.cpu, e.p50/1e3, e.cpu/1e3, name, s.p50/1e3, s.cpu/1e3)
	}
}
