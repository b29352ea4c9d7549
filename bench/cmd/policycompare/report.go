package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/crmgate/crmgate/bench/internal/stats"
	"github.com/crmgate/crmgate/policy"
)

// The requirement the comparison reports on: the embedded engine must be
// at least this many times faster per decision than an OPA server.
const targetTimes = 10.0

// Thresholds of the report's warnings.
const (
	loadAvgWarnPerCPU = 0.25
	// busyWarn: below this share of its CPU, a process that should have
	// kept its CPU busy (the engine deciding without pause, the OPA server
	// at saturation) did not.
	busyWarn = 0.9
)

// pair is one round's measurements of both sides with the same number of
// decisions in flight.
type pair struct{ emb, opa measurement }

// complete reports whether both sides were measured.
func (p pair) complete() bool { return p.emb.Decisions > 0 && p.opa.Decisions > 0 }

// round is one round's measurements.
type round struct {
	// first is the side measured first in each phase of the round.
	first string
	// seq is one decision at a time.
	seq pair
	// sat is options.callers decisions in flight; zero when skipped.
	sat pair
}

// mixInfo describes the mix of inputs for the report.
type mixInfo struct {
	distinct, perCycle int
	// distinctAllowed counts the distinct inputs the policy allows.
	distinctAllowed int
	// allowedShare is the share of allowed decisions in one cycle through
	// the mix, repeats included.
	allowedShare float64
}

// describeMix summarises m, whose distinct inputs got decisions ds.
func describeMix(m mix, ds []policy.Decision) mixInfo {
	info := mixInfo{distinct: len(m.distinct), perCycle: len(m.order)}
	for _, d := range ds {
		if d.Allow {
			info.distinctAllowed++
		}
	}
	allowed := 0
	for _, i := range m.order {
		if i < len(ds) && ds[i].Allow {
			allowed++
		}
	}
	if len(m.order) > 0 {
		info.allowedShare = float64(allowed) / float64(len(m.order))
	}
	return info
}

// report is everything the Markdown report shows.
type report struct {
	date                  time.Time
	model, cpus, kernel   string
	goVersion             string
	embeddedOPA           string // the OPA module crmgate is built with: v1.22.2
	serverOPA             string // what the opa binary reports: 1.22.2
	policies              string // the policy folder, relative to the repository when inside it
	revision              string // the policy set's revision
	dataPath              string // the Data API path queried
	mix                   mixInfo
	loadBefore, loadAfter string
	opts                  options
	rounds                []round
}

// figures are one side's figures over the rounds.
type figures struct {
	rate          stats.Summary // decisions per second
	p50, p90, p99 stats.Summary // µs
	cpu           stats.Summary // µs of CPU per decision, every process involved
	// workerCPU and serverCPU split cpu between the worker (the engine,
	// or OPA's client) and the OPA server.
	workerCPU, serverCPU stats.Summary
	// workerBusy and serverBusy are the shares of one CPU that the worker
	// (the engine, or OPA's client) and the OPA server kept busy.
	workerBusy, serverBusy stats.Summary
}

// comparison holds both sides' figures over the rounds and the ratios
// between them. Each ratio is taken within a round and then summarised,
// which cancels most of a shared machine's drift between rounds. Every
// ratio reads as how many times better the embedded engine did: OPA's
// latency or CPU time over the engine's, the engine's throughput over
// OPA's.
type comparison struct {
	emb, opa                 figures
	p50, p90, p99, rate, cpu stats.Summary
}

// compare summarises the rounds' pairs; incomplete pairs are left out.
func compare(pairs []pair) comparison {
	var ps []pair
	for _, p := range pairs {
		if p.complete() {
			ps = append(ps, p)
		}
	}
	over := func(f func(pair) float64) stats.Summary {
		vs := make([]float64, len(ps))
		for i, p := range ps {
			vs[i] = f(p)
		}
		return stats.Summarize(vs)
	}
	side := func(get func(pair) measurement) figures {
		return figures{
			rate:       over(func(p pair) float64 { return get(p).rate() }),
			p50:        over(func(p pair) float64 { return float64(get(p).P50Ns) / 1e3 }),
			p90:        over(func(p pair) float64 { return float64(get(p).P90Ns) / 1e3 }),
			p99:        over(func(p pair) float64 { return float64(get(p).P99Ns) / 1e3 }),
			cpu:        over(func(p pair) float64 { return get(p).cpuPerDecisionUs() }),
			workerCPU:  over(func(p pair) float64 { m := get(p); return m.perDecisionUs(m.CPUNs) }),
			serverCPU:  over(func(p pair) float64 { m := get(p); return m.perDecisionUs(m.ServerCPUNs) }),
			workerBusy: over(func(p pair) float64 { m := get(p); return m.busy(m.CPUNs) }),
			serverBusy: over(func(p pair) float64 { m := get(p); return m.busy(m.ServerCPUNs) }),
		}
	}
	// ratio is num/den, or NaN (left out of the summary) when den is not
	// positive.
	ratio := func(num, den float64) float64 {
		if den <= 0 {
			return math.NaN()
		}
		return num / den
	}
	return comparison{
		emb:  side(func(p pair) measurement { return p.emb }),
		opa:  side(func(p pair) measurement { return p.opa }),
		p50:  over(func(p pair) float64 { return ratio(float64(p.opa.P50Ns), float64(p.emb.P50Ns)) }),
		p90:  over(func(p pair) float64 { return ratio(float64(p.opa.P90Ns), float64(p.emb.P90Ns)) }),
		p99:  over(func(p pair) float64 { return ratio(float64(p.opa.P99Ns), float64(p.emb.P99Ns)) }),
		rate: over(func(p pair) float64 { return ratio(p.emb.rate(), p.opa.rate()) }),
		cpu:  over(func(p pair) float64 { return ratio(p.opa.cpuPerDecisionUs(), p.emb.cpuPerDecisionUs()) }),
	}
}

// writeReport writes the Markdown report.
func writeReport(w io.Writer, r report) {
	o := r.opts
	seqPairs := make([]pair, len(r.rounds))
	satPairs := make([]pair, len(r.rounds))
	for i, rd := range r.rounds {
		seqPairs[i], satPairs[i] = rd.seq, rd.sat
	}
	seq, sat := compare(seqPairs), compare(satPairs)

	fmt.Fprintf(w, "# Policy decisions: embedded engine vs. OPA server\n\n")
	fmt.Fprintf(w, "- date: %s\n", r.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s, %s CPUs; %s\n", r.model, r.cpus, r.kernel)
	fmt.Fprintf(w, "- toolchain: %s; OPA %s embedded, `opa` %s as the server\n", r.goVersion, r.embeddedOPA, r.serverOPA)
	fmt.Fprintf(w, "- policy: `%s` (revision %s), entrypoint `%s`; the server is asked `POST %s`\n",
		r.policies, short(r.revision), policy.DefaultEntrypoint, r.dataPath)
	fmt.Fprintf(w, "- inputs: %d distinct (%d allowed), cycled through in a fixed interleaving of %d, %s of them allowed; each gets the same decision from both sides\n",
		r.mix.distinct, r.mix.distinctAllowed, r.mix.perCycle, pct(r.mix.allowedShare))
	inFlight := "one decision at a time"
	if o.callers > 0 {
		inFlight += fmt.Sprintf(", then %d in flight", o.callers)
	}
	fmt.Fprintf(w, "- run: %d round(s); in each, both sides measured for %v after a %v warm-up, %s; the side measured first alternates between rounds\n",
		len(r.rounds), o.duration, o.warmup, inFlight)
	if o.pin {
		fmt.Fprintf(w, "- CPUs: embedded engine alone on CPU %d; OPA server alone on CPU %d, its client on CPU %d; every process with GOMAXPROCS=1\n", engineCPU, engineCPU, clientCPU)
	} else {
		fmt.Fprintf(w, "- CPUs: not pinned (-pin=false); every process with GOMAXPROCS=1\n")
	}
	fmt.Fprintf(w, "- load average before / after: %s / %s\n\n", r.loadBefore, r.loadAfter)

	fmt.Fprintf(w, "## One decision at a time\n\n")
	fmt.Fprintf(w, "Per decision, from a `policy.Input` to a decoded decision. Embedded: `Engine.Decide`, the input converted to OPA's form on each call. OPA server: the input encoded as JSON, `POST` on one keep-alive loopback connection, the answer read and decoded into a `policy.Decision`. Median [min–max] over rounds; CPU per decision counts every process involved.\n\n")
	fmt.Fprintf(w, "| | decisions/s | p50 | p90 | p99 | CPU per decision |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|\n")
	sideRow := func(name string, f figures) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", name,
			stats.WithRange(f.rate, stats.Thousands), stats.WithRange(f.p50, us), stats.WithRange(f.p90, us), stats.WithRange(f.p99, us), stats.WithRange(f.cpu, us))
	}
	sideRow("embedded engine", seq.emb)
	sideRow("OPA server over HTTP", seq.opa)
	fmt.Fprintf(w, "| **embedded advantage** (OPA ÷ embedded; decisions/s: embedded ÷ OPA) | **%s** | **%s** | %s | **%s** | %s |\n\n",
		stats.WithRange(seq.rate, times), stats.WithRange(seq.p50, times), stats.WithRange(seq.p90, times), stats.WithRange(seq.p99, times), stats.WithRange(seq.cpu, times))
	fmt.Fprintf(w, "OPA's CPU per decision: %s in the server, %s in its client (JSON encoding, HTTP, JSON decoding). The embedded engine kept %s of its CPU busy.\n\n",
		stats.WithRange(seq.opa.serverCPU, us), stats.WithRange(seq.opa.workerCPU, us), stats.WithRange(seq.emb.workerBusy, pct))

	fmt.Fprintf(w, "Requirement: the embedded engine is at least %s faster per decision (median of the per-round ratios):\n\n", times(targetTimes))
	for _, t := range []struct {
		what string
		s    stats.Summary
	}{{"p50 latency", seq.p50}, {"p99 latency", seq.p99}, {"decisions/s, one at a time", seq.rate}} {
		fmt.Fprintf(w, "- %s: %s: %s\n", t.what, times(t.s.Median), verdict(t.s.N > 0 && t.s.Median >= targetTimes))
	}
	fmt.Fprintln(w)

	if o.callers > 0 {
		fmt.Fprintf(w, "## %d decisions in flight\n\n", o.callers)
		fmt.Fprintf(w, "Throughput with one CPU for the decisions: %d goroutines sharing the engine's CPU; %d keep-alive connections to the server, whose CPU is the one the engine had. Busy: share of its CPU each process used. The latencies are not compared: a goroutine's wait for the engine's CPU comes before its timer starts, a request's wait in the server's queue is inside it.\n\n", o.callers, o.callers)
		fmt.Fprintf(w, "| | decisions/s | p50 | p99 | CPU per decision | busy: engine or OPA server | busy: OPA client |\n")
		fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|\n")
		fmt.Fprintf(w, "| embedded engine | %s | %s | %s | %s | %s | — |\n",
			stats.WithRange(sat.emb.rate, stats.Thousands), stats.WithRange(sat.emb.p50, us), stats.WithRange(sat.emb.p99, us), stats.WithRange(sat.emb.cpu, us), stats.WithRange(sat.emb.workerBusy, pct))
		fmt.Fprintf(w, "| OPA server over HTTP | %s | %s | %s | %s | %s | %s |\n",
			stats.WithRange(sat.opa.rate, stats.Thousands), stats.WithRange(sat.opa.p50, us), stats.WithRange(sat.opa.p99, us), stats.WithRange(sat.opa.cpu, us), stats.WithRange(sat.opa.serverBusy, pct), stats.WithRange(sat.opa.workerBusy, pct))
		fmt.Fprintf(w, "| **embedded advantage** | **%s** | | | **%s** | | |\n\n",
			stats.WithRange(sat.rate, times), stats.WithRange(sat.cpu, times))
	}

	fmt.Fprintf(w, "## Rounds\n\n")
	fmt.Fprintf(w, "| round | first | embedded decisions/s | OPA decisions/s | p50 ratio | p99 ratio | decisions/s ratio |")
	if o.callers > 0 {
		fmt.Fprintf(w, " decisions/s ratio, %d in flight |", o.callers)
	}
	fmt.Fprintf(w, "\n|--:|---|--:|--:|--:|--:|--:|")
	if o.callers > 0 {
		fmt.Fprintf(w, "--:|")
	}
	fmt.Fprintln(w)
	for i, rd := range r.rounds {
		one := compare([]pair{rd.seq})
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s |", i+1, sideName(rd.first),
			stats.Thousands(rd.seq.emb.rate()), stats.Thousands(rd.seq.opa.rate()),
			stats.WithRange(one.p50, times), stats.WithRange(one.p99, times), stats.WithRange(one.rate, times))
		if o.callers > 0 {
			fmt.Fprintf(w, " %s |", stats.WithRange(compare([]pair{rd.sat}).rate, times))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	if notes := runNotes(r, seq, sat); len(notes) > 0 {
		fmt.Fprintf(w, "## Warnings\n\n")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
}

// runNotes lists what makes the figures of this run less trustworthy.
func runNotes(r report, seq, sat comparison) []string {
	var notes []string
	if f := strings.Fields(r.loadBefore); len(f) > 0 {
		ncpu, _ := strconv.ParseFloat(r.cpus, 64)
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && ncpu > 0 && l > loadAvgWarnPerCPU*ncpu {
			notes = append(notes, fmt.Sprintf("the machine was busy before the run (1-minute load average %s on %s CPUs): absolute figures are noisy; compare the ratios", f[0], r.cpus))
		}
	}
	if !r.opts.pin {
		notes = append(notes, "the processes were not pinned to CPUs: the two sides did not get the same CPU budget")
	}
	if "v"+r.serverOPA != r.embeddedOPA {
		notes = append(notes, fmt.Sprintf("the server runs OPA %s, crmgate embeds %s", r.serverOPA, r.embeddedOPA))
	}
	if seq.emb.workerBusy.N > 0 && seq.emb.workerBusy.Min < busyWarn {
		notes = append(notes, fmt.Sprintf("the embedded engine, deciding without pause, kept only %s of its CPU busy in its worst round: other processes took CPU %d; latencies include their time slices",
			pct(seq.emb.workerBusy.Min), engineCPU))
	}
	if r.opts.callers > 0 && sat.opa.serverBusy.N > 0 && sat.opa.serverBusy.Median < busyWarn {
		if sat.opa.workerBusy.Median >= busyWarn {
			notes = append(notes, fmt.Sprintf("with %d in flight the OPA server kept only %s of its CPU busy while its client used %s of the other: the client was the limit, so OPA's decisions/s there understate the server's capacity; CPU per decision compares the costs",
				r.opts.callers, pct(sat.opa.serverBusy.Median), pct(sat.opa.workerBusy.Median)))
		} else {
			notes = append(notes, fmt.Sprintf("with %d in flight neither the OPA server (%s of its CPU) nor its client (%s) kept its CPU busy: other processes or the kernel's network work took the CPUs, or too few decisions were in flight (-concurrency), so OPA's decisions/s there are a lower bound; CPU per decision compares the costs",
				r.opts.callers, pct(sat.opa.serverBusy.Median), pct(sat.opa.workerBusy.Median)))
		}
	}
	return notes
}

// sideName is how the report names a side.
func sideName(side string) string {
	switch side {
	case sideEmbedded:
		return "embedded"
	case sideOPA:
		return "OPA server"
	}
	return side
}

// cpuName is how messages name a CPU; negative is "any".
func cpuName(cpu int) string {
	if cpu < 0 {
		return "any"
	}
	return strconv.Itoa(cpu)
}

// short is the first 12 characters of a revision.
func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// us formats microseconds with the precision the size calls for: 8.42 µs,
// 183.5 µs, 1.27 ms.
func us(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " ms"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64) + " µs"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " µs"
}

// times formats a ratio: 23.4×.
func times(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "×" }

// pct formats a share as a percentage: 93.1%.
func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }
