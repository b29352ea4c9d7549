package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseMallocs(t *testing.T) {
	text := "# HELP go_memstats_mallocs_total Total number of mallocs.\n# TYPE go_memstats_mallocs_total counter\ngo_memstats_mallocs_total 1.234567e+06\ngo_gc_duration_seconds 0.1\n"
	if got := parseMallocs(strings.NewReader(text)); got != 1234567 {
		t.Errorf("parseMallocs = %v, want 1234567", got)
	}
	if got := parseMallocs(strings.NewReader("up 1\n")); !math.IsNaN(got) {
		t.Errorf("parseMallocs without the counter = %v, want NaN", got)
	}
}

func TestSummarizeKeyLeavesOutClientBoundRounds(t *testing.T) {
	ms := []measurement{
		{RPS: 1000, CPUus: 100, P99us: 900},
		{RPS: 400, CPUus: 110, P99us: 5000, Discarded: true},
		{RPS: 1200, CPUus: 90, P99us: 800},
	}
	k := summarizeKey(ms)
	if k.rps.N != 2 || k.rps.Median != 1100 {
		t.Errorf("rps = %+v, want the median of the two kept rounds, 1100", k.rps)
	}
	if k.cpu.N != 3 || k.cpu.Median != 100 {
		t.Errorf("cpu = %+v, want all three rounds, median 100", k.cpu)
	}
	if k.discarded != 1 || k.rounds != 3 {
		t.Errorf("discarded %d of %d, want 1 of 3", k.discarded, k.rounds)
	}
	all := summarizeKey([]measurement{{RPS: 500, CPUus: 50, Discarded: true}})
	if all.rps.N != 1 || all.rps.Median != 500 {
		t.Errorf("every round client-bound: rps = %+v, want the lower bound 500", all.rps)
	}
}

func TestPairedRatio(t *testing.T) {
	a := []measurement{{CPUus: 200}, {CPUus: 100}, {CPUus: 150}}
	b := []measurement{{CPUus: 100}, {CPUus: 100}, {CPUus: 100}}
	// Per core: a is 5000, 10000, 6667 req/s; b 10000 each round.
	got := pairedRatio(a, b)
	if got.N != 3 || math.Abs(got.Median-2.0/3) > 1e-9 || got.Min != 0.5 || got.Max != 1 {
		t.Errorf("pairedRatio = %+v, want median 0.667 [0.5–1]", got)
	}
	if got := pairedRatio(a, nil); got.N != 0 {
		t.Errorf("pairedRatio without a reference = %+v, want nothing", got)
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		got, target float64
		atLeast     bool
		want        string
	}{
		{0.95, 0.9, true, "met"},
		{0.85, 0.9, true, "**missed**"},
		{0.3, 0.5, false, "met"},
		{0.7, 0.5, false, "**missed**"},
		{math.NaN(), 0.5, false, "not measured"},
	} {
		if got := verdict(tc.got, tc.target, tc.atLeast); got != tc.want {
			t.Errorf("verdict(%v, %v, %v) = %q, want %q", tc.got, tc.target, tc.atLeast, got, tc.want)
		}
	}
}

func TestOPAFactorsAndSessionMemory(t *testing.T) {
	rows := []ruleRow{
		{Rules: 10, Engine: "embedded", CPUus: 10, P50us: 5},
		{Rules: 10, Engine: "server", CPUus: 300, P50us: 400},
		{Rules: 1000, Engine: "embedded", CPUus: 20, P50us: 10},
		{Rules: 1000, Engine: "server", CPUus: 400, P50us: 500},
	}
	cpu, lat := opaFactors(rows)
	if cpu != 20 || lat != 50 {
		t.Errorf("opaFactors = %v, %v, want 20, 50 (the largest rule count)", cpu, lat)
	}
	sess := []sessionRow{{Store: "memory", Sessions: 1000, MB: 9}, {Store: "memory", Sessions: 10000, MB: 50}, {Store: "redis", Sessions: 10000, MB: 30}}
	if got := memPer100k(sess, "memory"); got != 500 {
		t.Errorf("memPer100k = %v, want 500", got)
	}
	if got := memPer100k(sess, "none"); !math.IsNaN(got) {
		t.Errorf("memPer100k of no rows = %v, want NaN", got)
	}
}

func TestParseLoginForm(t *testing.T) {
	page := `<html><form method="post" action="/login">
<input type="hidden" name="authRequestID" value="V1_abc&#43;def">
<input type="hidden" name="csrf" value="tok123">
<input id="username" name="username" required></form>
<form method="post" action="/login/otp"><input type="hidden" name="csrf" value="other"></form>`
	v, err := parseLoginForm(page)
	if err != nil {
		t.Fatal(err)
	}
	if v.Get("authRequestID") != "V1_abc+def" || v.Get("csrf") != "tok123" {
		t.Errorf("parseLoginForm = %v", v)
	}
	if _, err := parseLoginForm("<html>no form</html>"); err == nil {
		t.Error("parseLoginForm without a form: nil error")
	}
}

func TestWriteReportWithoutRuns(t *testing.T) {
	var b strings.Builder
	res := &results{runs: map[string][]measurement{}, latency: map[string][]loadPoint{}}
	writeReport(&b, meta{date: time.Unix(0, 0), opts: options{rounds: 1, duration: time.Second, warmup: time.Second, conns: 32}}, res)
	for _, want := range []string{"# crmgate side by side", "## Targets", "not measured"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
