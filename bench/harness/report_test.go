package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/bench/internal/stats"
)

// mk is one round's sample with the figures the report uses.
func mk(rps float64, refP99us float64) sample {
	return sample{
		sat: wrkResult{RPS: rps, P50: time.Millisecond, P99: 2 * time.Millisecond},
		own: loadResult{Rate: rps / 2, P50us: 300, P99us: 900},
		ref: loadResult{Rate: 5000, P50us: 250, P99us: refP99us},
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		res  *results
		// want holds, per configuration, the median [min, max] of the
		// ratio to the baseline and of the added p99 (µs).
		wantRatio map[string]stats.Summary
		wantAdded map[string]stats.Summary
	}{
		{
			name: "ratios and differences are paired by round",
			res: &results{refRate: 5000, samples: map[string][]sample{
				// Round 2 is slow for everyone: pairing keeps the ratio.
				"baseline": {mk(10000, 800), mk(5000, 1600), mk(10000, 1000)},
				"crmgate":  {mk(9000, 1000), mk(4500, 2000), mk(9500, 1100)},
				"direct":   {mk(12000, 700), mk(6000, 1500), mk(11000, 900)},
			}},
			wantRatio: map[string]stats.Summary{
				"baseline": {Median: 1, Min: 1, Max: 1, N: 3},
				"crmgate":  {Median: 0.9, Min: 0.9, Max: 0.95, N: 3},
				"direct":   {Median: 1.2, Min: 1.1, Max: 1.2, N: 3},
			},
			wantAdded: map[string]stats.Summary{
				"baseline": {Median: 0, Min: 0, Max: 0, N: 3},
				"crmgate":  {Median: 200, Min: 100, Max: 400, N: 3},
				"direct":   {Median: -100, Min: -100, Max: -100, N: 3},
			},
		},
		{
			name: "a round the baseline lacks is left out",
			res: &results{refRate: 5000, samples: map[string][]sample{
				"baseline": {mk(10000, 800)},
				"crmgate":  {mk(9000, 1000), mk(1, 1)},
			}},
			wantRatio: map[string]stats.Summary{
				"baseline": {Median: 1, Min: 1, Max: 1, N: 1},
				"crmgate":  {Median: 0.9, Min: 0.9, Max: 0.9, N: 1},
			},
			wantAdded: map[string]stats.Summary{
				"baseline": {N: 1},
				"crmgate":  {Median: 200, Min: 200, Max: 200, N: 1},
			},
		},
		{
			name: "a baseline that served nothing gives no ratio",
			res: &results{refRate: 5000, samples: map[string][]sample{
				"baseline": {mk(0, 800)},
				"crmgate":  {mk(9000, 1000)},
			}},
			wantRatio: map[string]stats.Summary{"baseline": {}, "crmgate": {}},
			wantAdded: map[string]stats.Summary{
				"baseline": {N: 1},
				"crmgate":  {Median: 200, Min: 200, Max: 200, N: 1},
			},
		},
	}
	approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotRatio, gotAdded := map[string]stats.Summary{}, map[string]stats.Summary{}
			for _, r := range summarize(tt.res) {
				gotRatio[r.name], gotAdded[r.name] = r.ratio, r.addedP99
			}
			if diff := cmp.Diff(gotRatio, tt.wantRatio, approx); diff != "" {
				t.Errorf("summarize() ratio mismatch (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(gotAdded, tt.wantAdded, approx); diff != "" {
				t.Errorf("summarize() added p99 mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"rate small", stats.Thousands(999.4), "999"},
		{"rate thousands", stats.Thousands(28194.2), "28,194"},
		{"rate millions", stats.Thousands(1234567), "1,234,567"},
		{"rate negative", stats.Thousands(-1234), "-1,234"},
		{"ms", ms(412), "0.41 ms"},
		{"signed positive", signedMs(210), "+0.21 ms"},
		{"signed negative", signedMs(-1500), "−1.50 ms"},
		{"pct", pct(0.9312), "93.1%"},
		{"range", stats.WithRange(stats.Summary{Median: 2, Min: 1, Max: 3, N: 3}, stats.Thousands), "2 [1–3]"},
		{"range of one", stats.WithRange(stats.Summary{Median: 2, Min: 2, Max: 2, N: 1}, stats.Thousands), "2"},
		{"range of none", stats.WithRange(stats.Summary{}, stats.Thousands), "—"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestWriteReport(t *testing.T) {
	res := &results{refRate: 5000, order: [][]string{{"crmgate", "direct", "baseline"}}, samples: map[string][]sample{
		"baseline": {mk(10000, 800)},
		"crmgate":  {mk(9500, 1000)},
		"direct":   {mk(12000, 700)},
	}}
	res.samples["crmgate"][0].sat.Non2xx = 3
	res.samples["crmgate"][0].ref.GenLagP99us = 2500
	var b strings.Builder
	writeReport(&b, meta{date: time.Unix(0, 0), model: "Test CPU", cpus: "2", loadBefore: "1.90 0.5 0.1", opts: options{rounds: 1}}, res)
	out := b.String()
	for _, want := range []string{
		"| crmgate | 9,500 | 95.0% | 1.00 / 2.00 ms | 0.30 / 0.90 ms | 0.25 / 1.00 ms | +0.20 ms |",
		"| baseline | 10,000 | reference |",
		"reference rate: 5,000 req/s, half of the baseline's throughput in a calibration run before round 1 (50.0% of the baseline's median in the rounds)",
		"crmgate at the reference rate, round(s) 1: the load generator itself sent 1% of requests more than 1.00 ms late (up to 2.50 ms)",
		"throughput: crmgate serves 95.0% of the baseline's req/s (target ≥ 90.0%): **met**",
		"crmgate adds +0.20 ms to the baseline's p99 at 5,000 req/s (target ≤ 0.50 ms): **met**",
		"round 1, crmgate: wrk saw 3 non-2xx responses",
		"the machine was busy before the run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("writeReport() output lacks %q; got:\n%s", want, out)
		}
	}
}
