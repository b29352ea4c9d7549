package main

import (
	"math"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as nginx's workers
	// and Go programs started through taskset can have.
	line := "4242 (nginx: wor)ker) S 4240 4240 4240 0 -1 4194624 1000 0 0 0 250 75 0 0 20 0 1 0 123456 10485760 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
	got, err := parseProcStat(line)
	if err != nil {
		t.Fatalf("parseProcStat: %v", err)
	}
	if got.pgrp != 4240 || got.cpuTicks != 325 || got.rssPages != 2048 {
		t.Errorf("parseProcStat = %+v, want pgrp 4240, 325 ticks, 2048 pages", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) = nil error", bad)
		}
	}
}

func TestParseCPUTimes(t *testing.T) {
	text := "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 5 0 5 40 10 0 0 0 0 0\ncpu1 5 0 5 60 0 0 0 2 0 0\nintr 1 2 3\n"
	got, err := parseCPUTimes(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.busy) != 2 || got.busy[0] != 10 || got.total[0] != 60 || got.busy[1] != 12 || got.total[1] != 72 {
		t.Errorf("parseCPUTimes = %+v", got)
	}
	if _, err := parseCPUTimes("intr 1\n"); err == nil {
		t.Error("parseCPUTimes without CPU lines: nil error")
	}
	b := cpuTimes{busy: []uint64{40, 12}, total: []uint64{100, 72}}
	if f := busyFraction(got, b, 0); math.Abs(f-0.75) > 1e-9 {
		t.Errorf("busyFraction = %v, want 0.75", f)
	}
	if f := busyFraction(got, got, 1); f != 0 {
		t.Errorf("busyFraction over no time = %v, want 0", f)
	}
}

func TestClientBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sut, load float64
		want      bool
	}{
		{"server saturated", 0.99, 0.99, false},
		{"client saturated first", 0.70, 0.98, true},
		{"neither", 0.50, 0.50, false},
		{"server busy, client not", 0.97, 0.60, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientBound(tc.sut, tc.load); got != tc.want {
				t.Errorf("clientBound(%v, %v) = %v, want %v", tc.sut, tc.load, got, tc.want)
			}
		})
	}
}
