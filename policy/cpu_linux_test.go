package policy

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// processCPU is this process's CPU time (user and system) in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// childCPU is the CPU time of process pid in ns, summed over its threads
// (/proc/PID/task/*/schedstat, nanosecond precision); 0 for pid 0 or
// when it cannot be read.
func childCPU(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	stats, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	var sum int64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if fs := strings.Fields(string(b)); len(fs) > 0 {
			n, _ := strconv.ParseInt(fs[0], 10, 64)
			sum += n
		}
	}
	return sum
}
