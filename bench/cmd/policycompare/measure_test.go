package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcStatCPU(t *testing.T) {
	// 22 fields after the name; utime 1234 and stime 66 ticks.
	tail := " S 1 2 3 0 -1 4194560 100 0 0 0 1234 66 0 0 20 0 5 0 100 1000 10"
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain name", "4242 (opa)" + tail, 13 * time.Second, false},
		{"name with spaces and parentheses", "4242 (a) b (c))" + tail, 13 * time.Second, false},
		{"no name", "4242 opa" + tail, 0, true},
		{"too short", "4242 (opa) S 1 2 3", 0, true},
		{"not a number", "4242 (opa) S 1 2 3 0 -1 4194560 100 0 0 0 x 66 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcStatCPU(%q) error = %v, want error %t", tt.stat, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseProcStatCPU(%q) = %v, want %v", tt.stat, got, tt.want)
			}
		})
	}
}

func TestSummarizeLatencies(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		d := make([]time.Duration, len(n))
		for i, v := range n {
			d[i] = time.Duration(v) * time.Millisecond
		}
		return d
	}
	tests := []struct {
		name string
		per  [][]time.Duration
		want latencies
	}{
		{"nothing", nil, latencies{}},
		{"callers are merged before ranking", [][]time.Duration{ms(10, 1, 3, 5, 7), ms(2, 9, 4, 6, 8)},
			latencies{n: 10, p50: 5 * time.Millisecond, p90: 9 * time.Millisecond, p99: 10 * time.Millisecond, max: 10 * time.Millisecond}},
		{"an idle caller", [][]time.Duration{ms(1, 2), nil},
			latencies{n: 2, p50: time.Millisecond, p90: 2 * time.Millisecond, p99: 2 * time.Millisecond, max: 2 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarizeLatencies(tt.per)
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(latencies{})); diff != "" {
				t.Errorf("summarizeLatencies(%v) mismatch (-got +want):\n%s", tt.per, diff)
			}
		})
	}
}

func TestLoop(t *testing.T) {
	order := []int{0, 1, 2, 3}
	t.Run("every caller decides until the time is up", func(t *testing.T) {
		var seen [4]atomic.Int64
		lats, elapsed, err := loop(context.Background(), 3, order, 20*time.Millisecond, func(_ context.Context, i int) error {
			seen[i].Add(1)
			return nil
		})
		if err != nil {
			t.Fatalf("loop() = %v", err)
		}
		if len(lats) != 3 {
			t.Fatalf("loop() returned %d callers' latencies, want 3", len(lats))
		}
		for g, l := range lats {
			if len(l) == 0 {
				t.Errorf("caller %d made no decision", g)
			}
		}
		for i := range seen {
			if seen[i].Load() == 0 {
				t.Errorf("input %d was never decided", i)
			}
		}
		if elapsed < 20*time.Millisecond {
			t.Errorf("loop() took %v, want at least the 20ms asked for", elapsed)
		}
	})
	t.Run("an error ends the loop", func(t *testing.T) {
		boom := errors.New("boom")
		_, _, err := loop(context.Background(), 2, order, time.Minute, func(context.Context, int) error { return boom })
		if !errors.Is(err, boom) {
			t.Errorf("loop() = %v, want %v", err, boom)
		}
	})
}

func TestMeasurementFigures(t *testing.T) {
	m := measurement{Decisions: 5000, ElapsedNs: int64(2 * time.Second), CPUNs: int64(time.Second), ServerCPUNs: int64(1500 * time.Millisecond)}
	if got, want := m.rate(), 2500.0; got != want {
		t.Errorf("rate() = %v, want %v", got, want)
	}
	if got, want := m.cpuPerDecisionUs(), 500.0; got != want {
		t.Errorf("cpuPerDecisionUs() = %v, want %v", got, want)
	}
	if got, want := m.busy(m.ServerCPUNs), 0.75; got != want {
		t.Errorf("busy(server) = %v, want %v", got, want)
	}
	var empty measurement
	if empty.rate() != 0 || empty.cpuPerDecisionUs() != 0 || empty.busy(1) != 0 {
		t.Errorf("an empty measurement's figures are %v, %v, %v; want zeros", empty.rate(), empty.cpuPerDecisionUs(), empty.busy(1))
	}
}
