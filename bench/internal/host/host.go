// Package host describes the machine a benchmark runs on, for reports.
package host

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
)

// Machine returns the CPU model and the number of CPUs, as lscpu reports
// them ("unknown" when it cannot tell).
func Machine() (model string, cpus string) {
	model, cpus = "unknown", "unknown"
	out, err := exec.Command("lscpu").Output()
	if err != nil {
		return model, cpus
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "Model name":
			model = strings.TrimSpace(v)
		case "CPU(s)":
			cpus = strings.TrimSpace(v)
		}
	}
	return model, cpus
}

// LoadAverage returns the 1, 5 and 15-minute load averages.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Kernel returns the operating system and kernel release.
func Kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
