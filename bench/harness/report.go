package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/crmgate/crmgate/bench/internal/stats"
)

// The targets crmgate is held to, as ratios measured in the same run.
const (
	targetC6vsC4     = 0.90
	targetC6vsO2P    = 1.10
	targetC7vsC4     = 0.60
	targetC7rvsC4    = 0.45
	targetAddedP99us = 500.0
	targetOPAFactor  = 10.0
	targetMBPer100k  = 100.0
)

// meta describes the run for the report's header.
type meta struct {
	date                time.Time
	model, cpus, kernel string
	flags               string
	goVersion           string
	versions            []string
	loadBefore          string
	loadAfter           string
	opts                options
	elapsed             time.Duration
}

// summary of one metric of one key over the rounds. Throughput leaves out
// rounds whose client saturated first unless every round did (then it is
// a lower bound, marked ≥); CPU per request holds whatever the load.
type keySummary struct {
	rps, perCore, cpu, p50, p99, rss, allocs stats.Summary
	discarded, rounds                        int
}

func summarizeKey(ms []measurement) keySummary {
	var k keySummary
	k.rounds = len(ms)
	col := func(f func(measurement) float64, skipDiscarded bool) stats.Summary {
		var vs []float64
		for _, m := range ms {
			if skipDiscarded && m.Discarded {
				continue
			}
			vs = append(vs, f(m))
		}
		if len(vs) == 0 && skipDiscarded {
			return stats.Summary{}
		}
		return stats.Summarize(vs)
	}
	for _, m := range ms {
		if m.Discarded {
			k.discarded++
		}
	}
	k.rps = col(func(m measurement) float64 { return m.RPS }, true)
	if k.rps.N == 0 {
		k.rps = col(func(m measurement) float64 { return m.RPS }, false)
	}
	k.perCore = col(measurement.perCore, false)
	k.cpu = col(func(m measurement) float64 { return m.CPUus }, false)
	k.p50 = col(func(m measurement) float64 { return m.P50us }, true)
	k.p99 = col(func(m measurement) float64 { return m.P99us }, true)
	k.rss = col(func(m measurement) float64 { return m.RSSMB }, false)
	k.allocs = col(func(m measurement) float64 { return m.Allocs }, false)
	return k
}

// pairedRatio is the median over rounds of a's per-core throughput over
// b's in the same round: pairing by round cancels most of the drift of a
// shared machine.
func pairedRatio(a, b []measurement) stats.Summary {
	var vs []float64
	for i := range min(len(a), len(b)) {
		x, y := a[i].perCore(), b[i].perCore()
		if y > 0 && !math.IsNaN(x) && !math.IsNaN(y) {
			vs = append(vs, x/y)
		}
	}
	return stats.Summarize(vs)
}

func thousands(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return stats.Thousands(v)
}
func one(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
func ratio(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}
func msf(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return strconv.FormatFloat(v/1000, 'f', 2, 64)
}
func rng(s stats.Summary, f func(float64) string) string { return stats.WithRange(s, f) }
func med(s stats.Summary) float64 {
	if s.N == 0 {
		return math.NaN()
	}
	return s.Median
}

// verdict is "met" or "missed" for a ratio against its target.
func verdict(got, target float64, atLeast bool) string {
	switch {
	case math.IsNaN(got):
		return "not measured"
	case atLeast && got >= target, !atLeast && got <= target:
		return "met"
	}
	return "**missed**"
}

// writeReport writes the Markdown report.
func writeReport(w io.Writer, m meta, res *results) {
	o := m.opts
	fmt.Fprintf(w, "# crmgate side by side\n\n")
	fmt.Fprintf(w, "- date: %s (run took %s)\n", m.date.UTC().Format("2006-01-02 15:04 MST"), m.elapsed.Round(time.Second))
	fmt.Fprintf(w, "- machine: %s, %s CPUs; %s; load average before %s, after %s\n", m.model, m.cpus, m.kernel, m.loadBefore, m.loadAfter)
	if m.flags != "" {
		fmt.Fprintf(w, "- CPU flags (selection): %s\n", m.flags)
	}
	fmt.Fprintf(w, "- software: %s; %s\n", m.goVersion, strings.Join(m.versions, "; "))
	fmt.Fprintf(w, "- run: %d round(s) in random order (seed %d), %s measurements after a %s warm-up, wrk -t1 -c%d, HTTPS keep-alive; TLS 1.3, X25519, ECDSA P-256 certificate, ALPN http/1.1\n",
		o.rounds, o.seed, o.duration, o.warmup, o.conns)
	fmt.Fprintf(w, "- CPU %d: the configuration under test and its sidecars (Redis, OPA), GOMAXPROCS=1, one nginx worker, one haproxy thread; CPU %d: the upstream (nginx, one worker, canned JSON), the IdP, wrk and the load generator\n", serverCPU, loadCPU)
	fmt.Fprintf(w, "- req/s per core = requests ÷ CPU seconds of the server's processes (sidecars included); a round whose client CPU saturated first (CPU %d ≥ %.0f%% busy while CPU %d < %.0f%%) is left out of req/s and latency (counted under \"disc.\")\n\n",
		loadCPU, loadBusyMax*100, serverCPU, sutBusyMin*100)

	ids := []string{}
	for _, c := range configurations {
		if len(res.runs[key(c.id, "get2k")]) > 0 {
			ids = append(ids, c.id)
		}
	}
	base := func(id, wl string) []measurement { return res.runs[key(id, wl)] }

	fmt.Fprintf(w, "## GET 2 KB\n\n")
	fmt.Fprintf(w, "| id | configuration | req/s | req/s per core | CPU µs/req | ÷ C4 | ÷ nginx (C1) | ÷ oauth2-proxy (C5) | p50 / p99 ms | RSS MB | allocs/req | disc. |\n")
	fmt.Fprintf(w, "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |\n")
	for _, id := range ids {
		c, _ := configByID(id)
		ms := base(id, "get2k")
		k := summarizeKey(ms)
		rps := rng(k.rps, thousands)
		if k.discarded == k.rounds {
			rps = "≥ " + rps
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %d/%d |\n",
			id, c.name, rps, rng(k.perCore, thousands), rng(k.cpu, one),
			ratio(med(pairedRatio(ms, base("C4", "get2k")))), ratio(med(pairedRatio(ms, base("C1", "get2k")))), ratio(med(pairedRatio(ms, base("C5", "get2k")))),
			msf(med(k.p50)), msf(med(k.p99)), one(med(k.rss)), one(med(k.allocs)), k.discarded, k.rounds)
	}
	fmt.Fprintln(w)
	for _, id := range ids {
		c, _ := configByID(id)
		fmt.Fprintf(w, "- %s %s: %s\n", id, c.name, c.what)
	}
	fmt.Fprintln(w)

	// The staircase: what each protection adds.
	fmt.Fprintf(w, "## What each crmgate feature costs (GET 2 KB)\n\n")
	fmt.Fprintf(w, "| step | adds | req/s per core | CPU µs/req | added µs/req | ÷ C4 |\n| --- | --- | --: | --: | --: | --: |\n")
	prev := math.NaN()
	for _, id := range []string{"C4", "C6", "C7.1", "C7.2", "C7.3", "C7.4", "C7.5", "C7", "C7r", "C8"} {
		ms := base(id, "get2k")
		if len(ms) == 0 {
			continue
		}
		c, _ := configByID(id)
		k := summarizeKey(ms)
		cpu := med(k.cpu)
		added := "—"
		if !math.IsNaN(prev) {
			added = fmt.Sprintf("%+.1f", cpu-prev)
		}
		// Variants are set against the step they vary.
		if of := map[string]string{"C7r": "C7", "C8": "C7.4"}[id]; of != "" {
			added = "—"
			if ref := base(of, "get2k"); len(ref) > 0 {
				added = fmt.Sprintf("%+.1f vs %s", cpu-med(summarizeKey(ref).cpu), of)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", id, c.what, thousands(med(k.perCore)), one(cpu), added, ratio(med(pairedRatio(ms, base("C4", "get2k")))))
		if id != "C7r" && id != "C8" {
			prev = cpu
		}
	}
	fmt.Fprintln(w)

	// Other workloads.
	fmt.Fprintf(w, "## Other workloads\n\nreq/s per core (÷ C4 of the same workload and round), CPU µs per request.\n\n")
	wls := []string{"get64k", "post1k", "apikey", "jwt", "deny401", "deny403", "deny429"}
	fmt.Fprintf(w, "| id |")
	for _, wl := range wls {
		fmt.Fprintf(w, " %s |", workloads[wl].what)
	}
	fmt.Fprintf(w, "\n| --- |%s\n", strings.Repeat(" --: |", len(wls)))
	for _, id := range ids {
		any := false
		line := "| " + id + " |"
		for _, wl := range wls {
			ms := base(id, wl)
			if len(ms) == 0 {
				line += " |"
				continue
			}
			any = true
			k := summarizeKey(ms)
			cell := fmt.Sprintf(" %s, %s µs", thousands(med(k.perCore)), one(med(k.cpu)))
			if r := pairedRatio(ms, base("C4", wl)); r.N > 0 {
				cell += " (" + ratio(r.Median) + ")"
			}
			line += cell + " |"
		}
		if any {
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)

	writeLatency(w, res)
	writeTargets(w, res)
	writeCurves(w, res)
}

func writeLatency(w io.Writer, res *results) {
	if len(res.latency) == 0 {
		return
	}
	fmt.Fprintf(w, "## Latency under load (GET 2 KB, open loop)\n\nbench/cmd/load at fixed rates, shares of C4's median throughput (%s req/s); latency from each request's scheduled time. p50 / p99 in ms; + is p99 added to C4's at the same rate.\n\n", thousands(res.c4Sat))
	fmt.Fprintf(w, "| id |")
	for _, s := range latencyShares {
		fmt.Fprintf(w, " %.0f%% (%s req/s) |", s*100, thousands(s*res.c4Sat))
	}
	fmt.Fprintf(w, "\n| --- |%s\n", strings.Repeat(" --: |", len(latencyShares)))
	for _, id := range latencyConfigs {
		pts := res.latency[id]
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", id)
		for i, p := range pts {
			cell := fmt.Sprintf(" %s / %s", msf(p.res.P50us), msf(p.res.P99us))
			if c4 := res.latency["C4"]; id != "C4" && i < len(c4) {
				cell += fmt.Sprintf(" (%+.2f)", (p.res.P99us-c4[i].res.P99us)/1000)
			}
			if p.res.Errors > 0 || p.res.AchievedRate < 0.95*p.res.Rate {
				cell += fmt.Sprintf(" ⚠ %d errors, %s req/s achieved", p.res.Errors, thousands(p.res.AchievedRate))
			}
			if p.res.GenLagP99us > 1000 {
				cell += " (generator lagged)"
			}
			fmt.Fprintf(w, "%s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// addedP99 is the p99 of id minus C4's at the 50% load, in µs.
func addedP99(res *results, id string) float64 {
	a, b := res.latency[id], res.latency["C4"]
	for i := range a {
		if a[i].share == 0.5 && i < len(b) {
			return a[i].res.P99us - b[i].res.P99us
		}
	}
	return math.NaN()
}

func writeTargets(w io.Writer, res *results) {
	r := func(a, b string) float64 {
		return med(pairedRatio(res.runs[key(a, "get2k")], res.runs[key(b, "get2k")]))
	}
	fmt.Fprintf(w, "## Targets (ratios in this run)\n\n| target | measured | verdict |\n| --- | --: | --- |\n")
	row := func(name string, got float64, f func(float64) string, target float64, atLeast bool) {
		fmt.Fprintf(w, "| %s | %s | %s |\n", name, f(got), verdict(got, target, atLeast))
	}
	row("C6 ≥ 0.9× C4 (req/s per core, GET 2 KB)", r("C6", "C4"), ratio, targetC6vsC4, true)
	row("C6 ≥ 1.1× oauth2-proxy, cookie store (C5)", r("C6", "C5"), ratio, targetC6vsO2P, true)
	row("C7 (local state) ≥ 0.6× C4", r("C7", "C4"), ratio, targetC7vsC4, true)
	row("C7r (Redis) ≥ 0.45× C4", r("C7r", "C4"), ratio, targetC7rvsC4, true)
	for _, id := range []string{"C6", "C7", "C7r"} {
		row(id+": p99 added vs C4 at 50% load ≤ 0.5 ms", addedP99(res, id)/1000, func(v float64) string {
			if math.IsNaN(v) {
				return "—"
			}
			return fmt.Sprintf("%+.2f ms", v)
		}, targetAddedP99us/1000, false)
	}
	if len(res.rules) > 0 {
		cpu, lat := opaFactors(res.rules)
		row("embedded OPA ≥ 10× less CPU per decision than the OPA server", cpu, ratio, targetOPAFactor, true)
		row("embedded OPA ≥ 10× lower decision latency than the OPA server", lat, ratio, targetOPAFactor, true)
	}
	if mb := memPer100k(res.sess, "memory"); !math.IsNaN(mb) {
		row("memory store ≤ 100 MB per 100k sessions", mb, func(v float64) string { return one(v) + " MB" }, targetMBPer100k, false)
	}
	fmt.Fprintln(w)
}
