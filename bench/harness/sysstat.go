package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture the benchmark runs on.
const clockTicks = 100

// procStat is what the harness reads from /proc/PID/stat.
type procStat struct {
	pgrp     int
	cpuTicks uint64 // utime + stime
	rssPages uint64
}

// parseProcStat reads one /proc/PID/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, errors.New("proc stat: no command name")
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("proc stat: %d fields after the name, want at least 22", len(f))
	}
	var s procStat
	pgrp, err := strconv.Atoi(f[5-3])
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat pgrp: %w", err)
	}
	s.pgrp = pgrp
	ut, err1 := strconv.ParseUint(f[14-3], 10, 64)
	st, err2 := strconv.ParseUint(f[15-3], 10, 64)
	rss, err3 := strconv.ParseInt(f[24-3], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("proc stat times: %w", err)
	}
	s.cpuTicks = ut + st
	if rss > 0 {
		s.rssPages = uint64(rss)
	}
	return s, nil
}

// groupUsage is the CPU time and resident memory of every process in the
// given process groups: a server and whatever it forked (nginx's workers)
// and its sidecars, each started in a group of its own.
type groupUsage struct {
	cpuTicks uint64
	rssBytes uint64
	procs    int
}

// readGroups sums /proc/*/stat over the processes in pgids.
func readGroups(pgids []int) groupUsage {
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	var u groupUsage
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	page := uint64(os.Getpagesize())
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		s, err := parseProcStat(string(b))
		if err != nil || !want[s.pgrp] {
			continue
		}
		u.cpuTicks += s.cpuTicks
		u.rssBytes += s.rssPages * page
		u.procs++
	}
	return u
}

// cpuTimes are the busy and total times of each CPU from /proc/stat, in
// ticks, indexed by CPU number.
type cpuTimes struct{ busy, total []uint64 }

// parseCPUTimes reads the per-CPU lines ("cpu0 user nice system idle
// iowait irq softirq steal ...") of /proc/stat. Idle and iowait are not
// busy; steal is, since another guest had the CPU.
func parseCPUTimes(text string) (cpuTimes, error) {
	var t cpuTimes
	for line := range strings.SplitSeq(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n > 4096 {
			continue
		}
		var total, idle uint64
		for i, v := range f[1:] {
			if i >= 8 { // guest times are already in user and nice
				break
			}
			x, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("/proc/stat %s: %w", f[0], err)
			}
			total += x
			if i == 3 || i == 4 {
				idle += x
			}
		}
		for len(t.busy) <= n {
			t.busy, t.total = append(t.busy, 0), append(t.total, 0)
		}
		t.busy[n], t.total[n] = total-idle, total
	}
	if len(t.total) == 0 {
		return cpuTimes{}, errors.New("/proc/stat: no per-CPU lines")
	}
	return t, nil
}

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	t, _ := parseCPUTimes(string(b))
	return t
}

// busyFraction is how busy cpu was between a and b, from 0 to 1; NaN-free:
// 0 when nothing was counted.
func busyFraction(a, b cpuTimes, cpu int) float64 {
	if cpu >= len(a.total) || cpu >= len(b.total) || b.total[cpu] <= a.total[cpu] {
		return 0
	}
	return float64(b.busy[cpu]-a.busy[cpu]) / float64(b.total[cpu]-a.total[cpu])
}

// Thresholds of the discard rule: a round in which the load CPU was at
// least this busy while the server's CPU was less busy than
// sutBusyMin measured the client, not the server.
const (
	loadBusyMax = 0.95
	sutBusyMin  = 0.90
)

// clientBound reports whether a measurement saturated the client side
// first (the load CPU near 100% while the server's CPU had time to spare):
// its throughput is a lower bound of the server's, so the round is
// discarded from the medians.
func clientBound(sutBusy, loadBusy float64) bool {
	return loadBusy >= loadBusyMax && sutBusy < sutBusyMin
}
