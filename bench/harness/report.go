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

// The targets crmgate is held to (see bench/README.md).
const (
	targetRatio       = 0.90  // throughput, as a fraction of the baseline's
	targetAddedP99us  = 500.0 // added p99 latency at the reference rate
	lagWarnUs         = 1000.0
	loadAvgWarnPerCPU = 0.25
)

// row is one configuration's figures over all rounds.
type row struct {
	name string
	rps  stats.Summary
	// ratio is rps over the baseline's rps in the same round; pairing by
	// round cancels most of the drift of a shared machine.
	ratio          stats.Summary
	satP50, satP99 stats.Summary // µs, from wrk
	ownRate        stats.Summary
	ownP50, ownP99 stats.Summary // µs
	refP50, refP90 stats.Summary // µs
	refP99, refMax stats.Summary // µs
	refGenLagP99   stats.Summary // µs
	// addedP99 is the reference-rate p99 minus the baseline's in the same
	// round, in µs.
	addedP99 stats.Summary
}

// summarize turns the samples into one row per configuration, in the
// order of configurations.
func summarize(res *results) []row {
	base := res.samples["baseline"]
	var rows []row
	for _, c := range configurations {
		ss := res.samples[c.name]
		if len(ss) == 0 {
			continue
		}
		col := func(f func(sample) float64) stats.Summary {
			vs := make([]float64, len(ss))
			for i, s := range ss {
				vs[i] = f(s)
			}
			return stats.Summarize(vs)
		}
		paired := func(f func(s, b sample) float64) stats.Summary {
			vs := make([]float64, len(ss))
			for i, s := range ss {
				vs[i] = math.NaN()
				if i < len(base) {
					vs[i] = f(s, base[i])
				}
			}
			return stats.Summarize(vs)
		}
		rows = append(rows, row{
			name: c.name,
			rps:  col(func(s sample) float64 { return s.sat.RPS }),
			ratio: paired(func(s, b sample) float64 {
				if b.sat.RPS <= 0 {
					return math.NaN()
				}
				return s.sat.RPS / b.sat.RPS
			}),
			satP50:       col(func(s sample) float64 { return us(s.sat.P50) }),
			satP99:       col(func(s sample) float64 { return us(s.sat.P99) }),
			ownRate:      col(func(s sample) float64 { return s.own.Rate }),
			ownP50:       col(func(s sample) float64 { return s.own.P50us }),
			ownP99:       col(func(s sample) float64 { return s.own.P99us }),
			refP50:       col(func(s sample) float64 { return s.ref.P50us }),
			refP90:       col(func(s sample) float64 { return s.ref.P90us }),
			refP99:       col(func(s sample) float64 { return s.ref.P99us }),
			refMax:       col(func(s sample) float64 { return s.ref.MaxUs }),
			refGenLagP99: col(func(s sample) float64 { return s.ref.GenLagP99us }),
			addedP99:     paired(func(s, b sample) float64 { return s.ref.P99us - b.ref.P99us }),
		})
	}
	return rows
}

// meta describes the run for the report's header.
type meta struct {
	date                  time.Time
	model, cpus, kernel   string
	goVersion, wrkVersion string
	loadBefore, loadAfter string
	opts                  options
}

// writeReport writes the Markdown report.
func writeReport(w io.Writer, m meta, res *results) {
	rows := summarize(res)
	ref := stats.Thousands(res.refRate)
	o := m.opts

	fmt.Fprintf(w, "# crmgate end-to-end benchmark\n\n")
	fmt.Fprintf(w, "- date: %s\n", m.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s, %s CPUs; %s\n", m.model, m.cpus, m.kernel)
	fmt.Fprintf(w, "- toolchain: %s; %s\n", m.goVersion, m.wrkVersion)
	fmt.Fprintf(w, "- run: %d round(s) of %s measurements after a %s wrk warm-up, %d keep-alive HTTPS connections, `GET %s`; order shuffled each round (seed %d)\n",
		o.rounds, o.duration, o.warmup, o.conns, o.path, o.seed)
	fmt.Fprintf(w, "- CPUs: configuration under test on CPU %d; upstream, wrk and the load generator on CPU %d; every Go program with GOMAXPROCS=1\n", serverCPU, loadCPU)
	fmt.Fprintf(w, "- reference rate: %s req/s, half of the baseline's throughput in a calibration run before round 1", ref)
	for _, r := range rows {
		if r.name == "baseline" && r.rps.Median > 0 {
			fmt.Fprintf(w, " (%s of the baseline's median in the rounds)", pct(res.refRate/r.rps.Median))
		}
	}
	fmt.Fprintf(w, "\n")
	fmt.Fprintf(w, "- load average before / after: %s / %s\n\n", m.loadBefore, m.loadAfter)

	fmt.Fprintf(w, "| configuration | req/s, median [min–max] | vs baseline | p50 / p99 at saturation | p50 / p99 at ½ own req/s | p50 / p99 at %s req/s (½ baseline) | added p99 vs baseline at %s req/s |\n", ref, ref)
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		ratio, added := "reference", "—"
		if r.name != "baseline" {
			ratio = stats.WithRange(r.ratio, pct)
			added = stats.WithRange(r.addedP99, signedMs)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s / %s | %s / %s | %s / %s | %s |\n",
			r.name, stats.WithRange(r.rps, stats.Thousands), ratio,
			msNum(r.satP50.Median), ms(r.satP99.Median),
			msNum(r.ownP50.Median), ms(r.ownP99.Median),
			msNum(r.refP50.Median), ms(r.refP99.Median),
			added)
	}
	fmt.Fprintln(w)

	for _, r := range rows {
		if r.name != "crmgate" {
			continue
		}
		fmt.Fprintf(w, "Targets:\n\n")
		fmt.Fprintf(w, "- throughput: crmgate serves %s of the baseline's req/s (target ≥ %s): %s\n",
			pct(r.ratio.Median), pct(targetRatio), verdict(r.ratio.N > 0 && r.ratio.Median >= targetRatio))
		fmt.Fprintf(w, "- latency: crmgate adds %s to the baseline's p99 at %s req/s (target ≤ %s): %s\n\n",
			signedMs(r.addedP99.Median), ref, ms(targetAddedP99us), verdict(r.addedP99.N > 0 && r.addedP99.Median <= targetAddedP99us))
	}

	fmt.Fprintf(w, "## Details\n\nMedian [min–max] over rounds. Saturation: wrk, closed loop. Other latencies: open loop at a fixed rate, measured from each request's scheduled send time.\n\n")
	fmt.Fprintf(w, "| metric |")
	for _, r := range rows {
		fmt.Fprintf(w, " %s |", r.name)
	}
	fmt.Fprintf(w, "\n|---|")
	for range rows {
		fmt.Fprintf(w, "--:|")
	}
	fmt.Fprintln(w)
	detail := func(label string, get func(row) stats.Summary, f func(float64) string) {
		fmt.Fprintf(w, "| %s |", label)
		for _, r := range rows {
			fmt.Fprintf(w, " %s |", stats.WithRange(get(r), f))
		}
		fmt.Fprintln(w)
	}
	detail("req/s at saturation", func(r row) stats.Summary { return r.rps }, stats.Thousands)
	detail("p50 at saturation", func(r row) stats.Summary { return r.satP50 }, ms)
	detail("p99 at saturation", func(r row) stats.Summary { return r.satP99 }, ms)
	detail("½ own rate, req/s", func(r row) stats.Summary { return r.ownRate }, stats.Thousands)
	detail("p50 at ½ own rate", func(r row) stats.Summary { return r.ownP50 }, ms)
	detail("p99 at ½ own rate", func(r row) stats.Summary { return r.ownP99 }, ms)
	detail("p50 at "+ref+" req/s", func(r row) stats.Summary { return r.refP50 }, ms)
	detail("p90 at "+ref+" req/s", func(r row) stats.Summary { return r.refP90 }, ms)
	detail("p99 at "+ref+" req/s", func(r row) stats.Summary { return r.refP99 }, ms)
	detail("max at "+ref+" req/s", func(r row) stats.Summary { return r.refMax }, ms)
	detail("generator lag p99 at "+ref+" req/s", func(r row) stats.Summary { return r.refGenLagP99 }, ms)
	fmt.Fprintln(w)

	fmt.Fprintf(w, "## Rounds\n\n| round | order |")
	for _, r := range rows {
		fmt.Fprintf(w, " %s req/s |", r.name)
	}
	fmt.Fprintf(w, "\n|--:|---|")
	for range rows {
		fmt.Fprintf(w, "--:|")
	}
	fmt.Fprintln(w)
	for i, order := range res.order {
		fmt.Fprintf(w, "| %d | %s |", i+1, strings.Join(order, ", "))
		for _, r := range rows {
			v := "—"
			if ss := res.samples[r.name]; i < len(ss) {
				v = stats.Thousands(ss[i].sat.RPS)
			}
			fmt.Fprintf(w, " %s |", v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "## Configurations\n\n")
	for _, c := range configurations {
		fmt.Fprintf(w, "- **%s**: %s\n", c.name, c.what)
	}
	fmt.Fprintln(w)

	notes := runNotes(m, res)
	if len(notes) > 0 {
		fmt.Fprintf(w, "## Warnings\n\n")
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
}

// runNotes lists what makes numbers of this run less trustworthy.
func runNotes(m meta, res *results) []string {
	var notes []string
	if f := strings.Fields(m.loadBefore); len(f) > 0 {
		ncpu, _ := strconv.ParseFloat(m.cpus, 64)
		if l, err := strconv.ParseFloat(f[0], 64); err == nil && ncpu > 0 && l > loadAvgWarnPerCPU*ncpu {
			notes = append(notes, fmt.Sprintf("the machine was busy before the run (1-minute load average %s on %s CPUs): absolute numbers are noisy; compare the ratios", f[0], m.cpus))
		}
	}
	for _, c := range configurations {
		ss := res.samples[c.name]
		for i, s := range ss {
			at := fmt.Sprintf("round %d, %s", i+1, c.name)
			if s.sat.Non2xx > 0 || s.sat.SocketErrors > 0 {
				notes = append(notes, fmt.Sprintf("%s: wrk saw %d non-2xx responses and %d socket errors in %d requests", at, s.sat.Non2xx, s.sat.SocketErrors, s.sat.Requests))
			}
			for _, l := range []struct {
				what string
				r    loadResult
			}{{"½ own rate", s.own}, {"reference rate", s.ref}} {
				if l.r.Errors > 0 || l.r.Unsent > 0 {
					notes = append(notes, fmt.Sprintf("%s, %s: %d of %d requests failed and %d were never sent (first error: %s)", at, l.what, l.r.Errors, l.r.Scheduled, l.r.Unsent, l.r.FirstError))
				}
			}
		}
		// One line per configuration and rate for a generator that was
		// late: it recurs on small machines and says the same each time.
		for _, l := range []struct {
			what string
			get  func(sample) loadResult
		}{{"½ own rate", func(s sample) loadResult { return s.own }}, {"the reference rate", func(s sample) loadResult { return s.ref }}} {
			var rounds []string
			worst := 0.0
			for i, s := range ss {
				if g := l.get(s).GenLagP99us; g > lagWarnUs {
					rounds = append(rounds, strconv.Itoa(i+1))
					worst = max(worst, g)
				}
			}
			if len(rounds) > 0 {
				notes = append(notes, fmt.Sprintf("%s at %s, round(s) %s: the load generator itself sent 1%% of requests more than %s late (up to %s) — CPU %d was saturated, so those latencies are upper bounds",
					c.name, l.what, strings.Join(rounds, ", "), ms(lagWarnUs), ms(worst), loadCPU))
			}
		}
	}
	return notes
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// msNum formats microseconds as milliseconds without a unit: 0.41.
func msNum(us float64) string { return strconv.FormatFloat(us/1000, 'f', 2, 64) }

// ms formats microseconds as milliseconds: 0.41 ms.
func ms(us float64) string { return msNum(us) + " ms" }

// signedMs formats a difference in microseconds as milliseconds: +0.21 ms.
func signedMs(us float64) string {
	if us >= 0 {
		return "+" + ms(us)
	}
	return "−" + ms(-us)
}

// pct formats a ratio as a percentage: 93.1%.
func pct(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }
