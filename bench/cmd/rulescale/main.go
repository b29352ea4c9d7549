// Command rulescale measures how one policy decision's cost grows with the
// number of rules, made by OPA's embedded Go library (a prepared query,
// as crmgate evaluates its policy) and asked of an OPA server (`opa run
// --server`, the sidecar setup) over HTTP on loopback. It prints one JSON
// line per engine and rule count.
//
// The generated policy has N route rules, one of which matches the
// input; the decision is an object, like crmgate's. Decisions are made
// one at a time. The embedded engine runs in this process, pinned to
// -server-cpu; the OPA server is pinned there too and this process then
// moves to -client-cpu, so both engines get the same single core.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

type row struct {
	Rules     int     `json:"rules"`
	Engine    string  `json:"engine"`
	Decisions int     `json:"decisions"`
	CPUus     float64 `json:"cpu_us"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "rulescale:", err)
		os.Exit(1)
	}
}

// policy returns a module with n route rules: decision is the grant of
// the rule whose route and method match the input.
func policy(n int) string {
	var b strings.Builder
	b.WriteString("package bench\n\ndefault decision := {\"allow\": false}\n\n")
	for i := range n {
		fmt.Fprintf(&b, "decision := {\"allow\": true, \"rule\": %d, \"tier\": \"standard\"} if {\n\tinput.route == \"route%d\"\n\tinput.method == \"GET\"\n\t\"support\" in input.subject.roles\n}\n\n", i, i)
	}
	return b.String()
}

func input(n int) map[string]any {
	return map[string]any{"route": "route" + strconv.Itoa(n-1), "method": "GET", "subject": map[string]any{"id": "alice", "roles": []any{"sales", "support"}}}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(p/100*float64(len(sorted))))
	return float64(sorted[i]) / 1e3
}

func pin(cpu int) error {
	out, err := exec.Command("taskset", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset: %w: %s", err, out)
	}
	return nil
}

func run() error {
	opaBin := flag.String("opa", "opa", "opa binary")
	rulesFlag := flag.String("rules", "10,100,1000", "rule counts")
	window := flag.Duration("window", 2*time.Second, "measuring time per engine and count")
	serverCPU := flag.Int("server-cpu", 0, "CPU of the engines")
	clientCPU := flag.Int("client-cpu", 1, "CPU of the client asking the OPA server")
	asJSON := flag.Bool("json", false, "JSON lines")
	flag.Parse()
	out := func(r row) {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
			return
		}
		fmt.Printf("%5d rules %-8s %8d decisions %7.1f µs CPU  p50 %7.1f µs  p99 %7.1f µs\n", r.Rules, r.Engine, r.Decisions, r.CPUus, r.P50us, r.P99us)
	}
	dir, err := os.MkdirTemp("", "rulescale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for f := range strings.SplitSeq(*rulesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-rules %q", f)
		}
		mod := policy(n)
		in := input(n)

		// Embedded.
		if err := pin(*serverCPU); err != nil {
			return err
		}
		ctx := context.Background()
		pq, err := rego.New(rego.Query("data.bench.decision"), rego.Module("bench.rego", mod)).PrepareForEval(ctx)
		if err != nil {
			return err
		}
		for range 200 { // warm-up
			if _, err := pq.Eval(ctx, rego.EvalInput(in)); err != nil {
				return err
			}
		}
		var lat []time.Duration
		c0, t0 := cpuNow(), time.Now()
		for time.Since(t0) < *window {
			s := time.Now()
			rs, err := pq.Eval(ctx, rego.EvalInput(in))
			lat = append(lat, time.Since(s))
			if err != nil || len(rs) != 1 {
				return fmt.Errorf("embedded eval: %v %v", rs, err)
			}
		}
		cpu := cpuNow() - c0
		slices.Sort(lat)
		out(row{n, "embedded", len(lat), float64(cpu) / 1e3 / float64(len(lat)), pct(lat, 50), pct(lat, 99)})

		// Server.
		r, err := server(*opaBin, dir, mod, n, in, *serverCPU, *clientCPU, *window)
		if err != nil {
			return err
		}
		out(r)
	}
	return nil
}

func server(opaBin, dir, mod string, n int, in map[string]any, serverCPU, clientCPU int, window time.Duration) (row, error) {
	file := filepath.Join(dir, fmt.Sprintf("bench-%d.rego", n))
	if err := os.WriteFile(file, []byte(mod), 0o600); err != nil {
		return row{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row{}, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command("taskset", "-c", strconv.Itoa(serverCPU), opaBin, "run", "--server", "--addr", addr, "--log-level", "error", "--skip-version-check", file)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return row{}, err
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	if err := pin(clientCPU); err != nil {
		return row{}, err
	}
	body, _ := json.Marshal(map[string]any{"input": in})
	url := "http://" + addr + "/v1/data/bench/decision"
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	ask := func() error {
		res, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Contains(b, []byte(`"allow":true`)) {
			return fmt.Errorf("opa server: %d %s", res.StatusCode, b)
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for ask() != nil {
		if time.Now().After(deadline) {
			return row{}, errors.New("opa server not ready after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 200 {
		if err := ask(); err != nil {
			return row{}, err
		}
	}
	var lat []time.Duration
	c0 := procCPU(cmd.Process.Pid)
	t0 := time.Now()
	for time.Since(t0) < window {
		s := time.Now()
		if err := ask(); err != nil {
			return row{}, err
		}
		lat = append(lat, time.Since(s))
	}
	cpu := procCPU(cmd.Process.Pid) - c0
	slices.Sort(lat)
	return row{n, "server", len(lat), float64(cpu) / 1e3 / float64(len(lat)), pct(lat, 50), pct(lat, 99)}, nil
}

// procCPU is a process's user and system time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
