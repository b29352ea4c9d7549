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

// FlagSummary returns the CPU flags that matter to TLS and copying
// (AES-NI, PCLMULQDQ, AVX2, AVX-512F, SHA, ADX, BMI2) that the CPU has,
// from /proc/cpuinfo; "" when it cannot tell.
func FlagSummary() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	var have map[string]bool
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == "flags" {
			have = map[string]bool{}
			for _, f := range strings.Fields(v) {
				have[f] = true
			}
			break
		}
	}
	var out []string
	for _, f := range []string{"aes", "pclmulqdq", "avx2", "avx512f", "sha_ni", "adx", "bmi2"} {
		if have[f] {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}
