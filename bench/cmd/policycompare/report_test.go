package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/bench/internal/stats"
)

// meas is a one-second window of n decisions with the given p50 and p99
// in µs (p90 is their mean) and the given CPU times in ms.
func meas(n int, p50us, p99us int64, cpuMs, serverCPUMs int64) measurement {
	return measurement{
		Decisions: n, ElapsedNs: int64(time.Second),
		P50Ns: p50us * 1000, P90Ns: (p50us + p99us) / 2 * 1000, P99Ns: p99us * 1000, MaxNs: 2 * p99us * 1000,
		CPUNs: cpuMs * 1e6, ServerCPUNs: serverCPUMs * 1e6,
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name  string
		pairs []pair
		// want holds the ratios: p50, p99, rate, cpu.
		want [4]stats.Summary
	}{
		{
			name: "ratios are paired by round",
			pairs: []pair{
				// Round 2 is slow for both: pairing keeps the ratio.
				{meas(20000, 40, 200, 1000, 0), meas(2000, 400, 3000, 400, 600)},
				{meas(10000, 80, 400, 1000, 0), meas(1000, 800, 6000, 400, 600)},
				{meas(20000, 50, 200, 1000, 0), meas(2500, 300, 2000, 400, 600)},
			},
			want: [4]stats.Summary{
				{Median: 10, Min: 6, Max: 10, N: 3},
				{Median: 15, Min: 10, Max: 15, N: 3},
				{Median: 10, Min: 8, Max: 10, N: 3},
				// 1000 ms / 2000 decisions = 500 µs vs 1000/20000 = 50 µs.
				{Median: 10, Min: 8, Max: 10, N: 3},
			},
		},
		{
			name: "an incomplete round is left out",
			pairs: []pair{
				{meas(20000, 40, 200, 1000, 0), meas(2000, 400, 3000, 400, 600)},
				{meas(20000, 40, 200, 1000, 0), measurement{}},
			},
			want: [4]stats.Summary{
				{Median: 10, Min: 10, Max: 10, N: 1},
				{Median: 15, Min: 15, Max: 15, N: 1},
				{Median: 10, Min: 10, Max: 10, N: 1},
				{Median: 10, Min: 10, Max: 10, N: 1},
			},
		},
		{
			name:  "nothing measured",
			pairs: []pair{{}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := compare(tt.pairs)
			got := [4]stats.Summary{c.p50, c.p99, c.rate, c.cpu}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("compare(%v) ratios p50, p99, rate, cpu mismatch (-got +want):\n%s", tt.name, diff)
			}
		})
	}
}

func TestCompareSideFigures(t *testing.T) {
	c := compare([]pair{{meas(20000, 40, 200, 1000, 0), meas(2000, 400, 3000, 400, 900)}})
	want := figures{
		rate: stats.Summary{Median: 2000, Min: 2000, Max: 2000, N: 1},
		p50:  stats.Summary{Median: 400, Min: 400, Max: 400, N: 1},
		p90:  stats.Summary{Median: 1700, Min: 1700, Max: 1700, N: 1},
		p99:  stats.Summary{Median: 3000, Min: 3000, Max: 3000, N: 1},
		// (400 + 900) ms over 2000 decisions.
		cpu:        stats.Summary{Median: 650, Min: 650, Max: 650, N: 1},
		workerCPU:  stats.Summary{Median: 200, Min: 200, Max: 200, N: 1},
		serverCPU:  stats.Summary{Median: 450, Min: 450, Max: 450, N: 1},
		workerBusy: stats.Summary{Median: 0.4, Min: 0.4, Max: 0.4, N: 1},
		serverBusy: stats.Summary{Median: 0.9, Min: 0.9, Max: 0.9, N: 1},
	}
	if diff := cmp.Diff(c.opa, want, cmp.AllowUnexported(figures{})); diff != "" {
		t.Errorf("compare().opa mismatch (-got +want):\n%s", diff)
	}
}

func TestFormats(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"rate small", stats.Thousands(999.4), "999"},
		{"rate thousands", stats.Thousands(28194), "28,194"},
		{"rate millions", stats.Thousands(1234567), "1,234,567"},
		{"rate negative", stats.Thousands(-1234), "-1,234"},
		{"us below 100", us(8.421), "8.42 µs"},
		{"us hundreds", us(183.46), "183.5 µs"},
		{"us as ms", us(1270), "1.27 ms"},
		{"times", times(9.96), "10.0×"},
		{"pct", pct(0.931), "93.1%"},
		{"range none", stats.WithRange(stats.Summary{}, times), "—"},
		{"range one", stats.WithRange(stats.Summary{Median: 5, Min: 5, Max: 5, N: 1}, times), "5.0×"},
		{"range equal when formatted", stats.WithRange(stats.Summary{Median: 5, Min: 4.99, Max: 5.01, N: 3}, times), "5.0×"},
		{"range", stats.WithRange(stats.Summary{Median: 5, Min: 4, Max: 6.5, N: 3}, times), "5.0× [4.0×–6.5×]"},
		{"short revision", short("0123456789abcdef"), "0123456789ab"},
		{"short short revision", short("abc"), "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestDataPath(t *testing.T) {
	tests := []struct {
		ep      string
		want    string
		wantErr bool
	}{
		{"data.crmgate.authz.decision", "/v1/data/crmgate/authz/decision", false},
		{"data.p.allow", "/v1/data/p/allow", false},
		{"data.p[\"a b\"]", "", true},
		{"crmgate.authz.decision", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.ep, func(t *testing.T) {
			got, err := dataPath(tt.ep)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("dataPath(%q) = %q, %v; want %q, error %t", tt.ep, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestWriteReport(t *testing.T) {
	r := report{
		date: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), model: "AMD EPYC", cpus: "2", kernel: "Linux 6.18",
		goVersion: "go1.26.8", embeddedOPA: "v1.22.2", serverOPA: "1.22.2", revision: "0123456789abcdef",
		policies: "policies/", dataPath: "/v1/data/crmgate/authz/decision", loadBefore: "0.10 0.20 0.30", loadAfter: "1.00 0.50 0.40",
		mix:  mixInfo{distinct: 28, perCycle: 66, distinctAllowed: 20, allowedShare: 0.5},
		opts: options{policies: "/repo/policies", rounds: 2, duration: 10 * time.Second, warmup: 2 * time.Second, callers: 4, pin: true},
		rounds: []round{
			{first: sideEmbedded,
				seq: pair{meas(20000, 40, 200, 1000, 0), meas(2000, 480, 3000, 400, 600)},
				sat: pair{meas(21000, 180, 400, 1000, 0), meas(3000, 1200, 5000, 350, 700)}},
			{first: sideOPA,
				seq: pair{meas(20000, 40, 200, 1000, 0), meas(2000, 480, 3000, 400, 600)},
				sat: pair{meas(21000, 180, 400, 1000, 0), meas(3000, 1200, 5000, 350, 700)}},
		},
	}
	var b strings.Builder
	writeReport(&b, r)
	out := b.String()
	for _, want := range []string{
		"- date: 2026-12-05 10:00 UTC\n",
		"- policy: `policies/` (revision 0123456789ab)",
		"| embedded engine | 20,000 | 40.00 µs | 120.0 µs | 200.0 µs | 50.00 µs |\n",
		"| OPA server over HTTP | 2,000 | 480.0 µs | 1.74 ms | 3.00 ms | 500.0 µs |\n",
		"| **embedded advantage** (OPA ÷ embedded; decisions/s: embedded ÷ OPA) | **10.0×** | **12.0×** | 14.5× | **15.0×** | 10.0× |\n",
		"- p50 latency: 12.0×: **met**\n",
		"- p99 latency: 15.0×: **met**\n",
		"- decisions/s, one at a time: 10.0×: **met**\n",
		"## 4 decisions in flight\n",
		"| OPA server over HTTP | 3,000 | 1.20 ms | 5.00 ms | 350.0 µs | 70.0% | 35.0% |\n",
		// Latencies with several in flight are not compared.
		"| **embedded advantage** | **7.0×** | | | **",
		"| 2 | OPA server | 20,000 | 2,000 | 12.0× | 15.0× | 10.0× | 7.0× |\n",
		"OPA's CPU per decision: 300.0 µs in the server, 200.0 µs in its client",
		// Neither side of OPA kept its CPU busy with 4 in flight.
		"neither the OPA server (70.0% of its CPU) nor its client (35.0%)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("writeReport() lacks %q; the report:\n%s", want, out)
		}
	}
	if strings.Contains(out, "busy before the run") {
		t.Errorf("writeReport() warns of a busy machine at load 0.10 on 2 CPUs:\n%s", out)
	}

	if strings.Contains(out, "other processes took CPU") {
		t.Errorf("writeReport() warns of a starved engine that kept its CPU busy:\n%s", out)
	}

	// The client on its own CPU is the limit.
	for i := range r.rounds {
		r.rounds[i].sat.opa.CPUNs = 950e6
	}
	b.Reset()
	writeReport(&b, r)
	if out := b.String(); !strings.Contains(out, "the client was the limit") {
		t.Errorf("writeReport() with a busy client lacks its warning:\n%s", out)
	}

	// An engine that got half of its CPU, and a 5× p50.
	r.rounds[0].seq.emb.CPUNs = 500e6
	r.rounds[0].seq.opa.P50Ns = 200_000
	r.rounds[1].seq.opa.P50Ns = 200_000
	r.opts.callers = 0
	b.Reset()
	writeReport(&b, r)
	out = b.String()
	if !strings.Contains(out, "kept only 50.0% of its CPU busy in its worst round") {
		t.Errorf("writeReport() with a starved engine lacks its warning:\n%s", out)
	}
	if !strings.Contains(out, "- p50 latency: 5.0×: **not met**\n") {
		t.Errorf("writeReport() with a 5× p50 lacks the unmet requirement:\n%s", out)
	}
	if strings.Contains(out, "in flight\n") {
		t.Errorf("writeReport() without a saturation measurement has its section:\n%s", out)
	}
}
