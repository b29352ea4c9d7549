package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/stats"
)

// measurement is what one worker measured: one side (embedded or OPA)
// with some callers in flight, over one measured window. It travels from
// the worker to the coordinator as JSON.
type measurement struct {
	// Side is sideEmbedded or sideOPA.
	Side string `json:"side"`
	// Callers is how many decisions were in flight at once.
	Callers int `json:"callers"`
	// Decisions is how many decisions the window holds.
	Decisions int `json:"decisions"`
	// ElapsedNs is the window's length.
	ElapsedNs int64 `json:"elapsed_ns"`
	// Latency percentiles of one decision, in nanoseconds.
	P50Ns int64 `json:"p50_ns"`
	P90Ns int64 `json:"p90_ns"`
	P99Ns int64 `json:"p99_ns"`
	MaxNs int64 `json:"max_ns"`
	// CPUNs is the CPU time (user and system) the worker itself used in
	// the window: the embedded engine, or the OPA client.
	CPUNs int64 `json:"cpu_ns"`
	// ServerCPUNs is the CPU time the OPA server used in the window; 0
	// for the embedded side.
	ServerCPUNs int64 `json:"server_cpu_ns"`
}

// Sides of the comparison.
const (
	sideEmbedded = "embedded"
	sideOPA      = "opa"
)

// rate is decisions per second over the window; 0 for an empty window.
func (m measurement) rate() float64 {
	if m.ElapsedNs <= 0 {
		return 0
	}
	return float64(m.Decisions) / (float64(m.ElapsedNs) / 1e9)
}

// cpuPerDecisionUs is the CPU time of every process involved per
// decision, in microseconds; 0 for an empty window.
func (m measurement) cpuPerDecisionUs() float64 { return m.perDecisionUs(m.CPUNs + m.ServerCPUNs) }

// perDecisionUs is cpuNs of CPU time per decision, in microseconds; 0
// for an empty window.
func (m measurement) perDecisionUs(cpuNs int64) float64 {
	if m.Decisions == 0 {
		return 0
	}
	return float64(cpuNs) / float64(m.Decisions) / 1e3
}

// busy is the fraction of the window a process with cpuNs of CPU time
// kept one CPU busy.
func (m measurement) busy(cpuNs int64) float64 {
	if m.ElapsedNs <= 0 {
		return 0
	}
	return float64(cpuNs) / float64(m.ElapsedNs)
}

// decideFunc makes one decision on the input at index i of the mix; an
// error ends the measurement.
type decideFunc func(ctx context.Context, i int) error

// loop runs callers goroutines that each make decisions one after another
// for d, cycling through order (each starting at its own place), and
// returns every decision's latency and how long the loop took in all. A
// caller makes its last decision when the time is up, so the loop lasts d
// plus at most one decision.
func loop(ctx context.Context, callers int, order []int, d time.Duration, decide decideFunc) ([][]time.Duration, time.Duration, error) {
	lats := make([][]time.Duration, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for g := range callers {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			k := g * len(order) / callers
			for {
				t0 := time.Now()
				if err := decide(ctx, order[k]); err != nil {
					errs[g] = err
					return
				}
				t1 := time.Now()
				lat = append(lat, t1.Sub(t0))
				if !t1.Before(end) {
					break
				}
				if k++; k == len(order) {
					k = 0
				}
			}
			lats[g] = lat
		})
	}
	wg.Wait()
	return lats, time.Since(start), errors.Join(errs...)
}

// latencies are the percentiles of one window's decisions.
type latencies struct {
	n                  int
	p50, p90, p99, max time.Duration
}

// summarizeLatencies merges the callers' latencies and takes their
// nearest-rank percentiles. It sorts the slices it is given.
func summarizeLatencies(per [][]time.Duration) latencies {
	n := 0
	for _, l := range per {
		n += len(l)
	}
	all := make([]time.Duration, 0, n)
	for _, l := range per {
		all = append(all, l...)
	}
	slices.Sort(all)
	return latencies{
		n:   n,
		p50: stats.Percentile(all, 50),
		p90: stats.Percentile(all, 90),
		p99: stats.Percentile(all, 99),
		max: stats.Percentile(all, 100),
	}
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// userHZ is the unit of CPU times in /proc/<pid>/stat: USER_HZ, which the
// kernel fixes at 100 for user space on every architecture Go runs on.
const userHZ = 100

// procCPU is the CPU time (user and system) process pid has used, from
// /proc/<pid>/stat; its resolution is 10 ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

// parseProcStatCPU reads utime and stime (fields 14 and 15, proc(5)) from
// the content of /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("/proc stat: CPU time %q is not a count of ticks", s)
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// window measures decide over a warm-up (not recorded) and then a
// measured window of d, recording CPU times around the measured window
// only. serverPID, when positive, is a process whose CPU time is recorded
// too (the OPA server).
func window(ctx context.Context, side string, callers int, order []int, warmup, d time.Duration, serverPID int, decide decideFunc) (measurement, error) {
	if warmup > 0 {
		if _, _, err := loop(ctx, callers, order, warmup, decide); err != nil {
			return measurement{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	var srv0, srv1 time.Duration
	var err error
	if serverPID > 0 {
		if srv0, err = procCPU(serverPID); err != nil {
			return measurement{}, err
		}
	}
	cpu0, err := selfCPU()
	if err != nil {
		return measurement{}, err
	}
	per, elapsed, err := loop(ctx, callers, order, d, decide)
	if err != nil {
		return measurement{}, err
	}
	cpu1, err := selfCPU()
	if err != nil {
		return measurement{}, err
	}
	if serverPID > 0 {
		if srv1, err = procCPU(serverPID); err != nil {
			return measurement{}, err
		}
	}
	l := summarizeLatencies(per)
	return measurement{
		Side:        side,
		Callers:     callers,
		Decisions:   l.n,
		ElapsedNs:   elapsed.Nanoseconds(),
		P50Ns:       l.p50.Nanoseconds(),
		P90Ns:       l.p90.Nanoseconds(),
		P99Ns:       l.p99.Nanoseconds(),
		MaxNs:       l.max.Nanoseconds(),
		CPUNs:       (cpu1 - cpu0).Nanoseconds(),
		ServerCPUNs: (srv1 - srv0).Nanoseconds(),
	}, nil
}
