package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
)

// machine returns the CPU model and the number of CPUs, as lscpu reports
// them.
func machine() (model string, cpus string) {
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

// loadAverage returns the 1, 5 and 15-minute load averages.
func loadAverage() string {
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

// kernel returns the operating system and kernel release.
func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
