// Command policycompare measures one policy decision made by crmgate's
// embedded engine (package policy) against the same decision asked of an
// OPA server process (`opa run --server`) over HTTP on loopback, the usual
// sidecar setup. Both sides load the same policy folder (policies/ by
// default) and decide the same realistic mix of inputs; before anything is
// measured, every input must get a valid decision from the embedded engine
// and the same allow or deny, for the same reason, from the server.
//
// It measures, in rounds that alternate which side goes first, each side
// one decision at a time (latency per decision) and with several decisions
// in flight (throughput at saturation), with the same single CPU for the
// embedded engine as for the OPA server. It prints a Markdown report and
// writes it to bench/results/policy-latest.md. The figures that matter are
// the ratios; see docs/benchmarks.md, "Policy decisions: embedded vs. OPA
// server".
//
// It owns the measurement only: it builds the opa command with `go
// install` (once, into the Go build cache's folder) unless given one, and
// the server it starts listens on 127.0.0.1 and ends with it, also on
// Ctrl-C and on errors. Run it with `make bench-policy` or `go run
// ./bench/cmd/policycompare [-quick]` from the repository.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/host"
	"github.com/crmgate/crmgate/bench/internal/stats"
	"github.com/crmgate/crmgate/internal/opabin"
	"github.com/crmgate/crmgate/policy"
)

// The CPU layout (see docs/benchmarks.md): the embedded engine and the OPA
// server each get CPU 0 alone, at different times; the OPA client, which
// stands for the gateway's side of a sidecar call, gets CPU 1.
const (
	engineCPU = 0
	clientCPU = 1
)

// options are the command-line settings.
type options struct {
	policies string
	opa      string
	rounds   int
	duration time.Duration // each side's measured window
	warmup   time.Duration
	callers  int // decisions in flight in the saturation measurement; 0 skips it
	out      string
	pin      bool
}

var errUsage = errors.New("usage")

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runWorkerCommand(ctx, os.Args[2:], os.Stdout)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "policycompare worker:", err)
			os.Exit(1)
		}
		return
	}
	dieWithParent()
	// Signals stay caught until run returns: the first one cancels ctx and
	// further ones must not cut the cleanup short. A kill -9 still takes
	// the children along (sysProcAttr).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	// Read before stop, which cancels ctx too.
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintln(os.Stderr, "policycompare: interrupted; the OPA server has been stopped")
		os.Exit(130)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "policycompare:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("policycompare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.policies, "policies", "", "policy folder (default: policies/ of the repository)")
	fs.StringVar(&o.opa, "opa", "", "opa binary to run as the server (default: build the version go.mod requires, once)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures both sides, the one that goes first alternates")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured window")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each measured window")
	fs.IntVar(&o.callers, "concurrency", 4, "decisions in flight in the saturation measurement; 0 skips it")
	quick := fs.Bool("quick", false, "1 round of 2s windows after 1s warm-ups (a smoke test, under a minute once opa is built)")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results", "policy-latest.md"), "report file, relative to the repository unless absolute")
	fs.BoolVar(&o.pin, "pin", true, "pin the sides to CPUs with taskset (needs Linux and 2 CPUs)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/cmd/policycompare [-quick] [flags]\n\nMeasures policy decisions of crmgate's embedded engine against an OPA server on loopback; see docs/benchmarks.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return o, errUsage
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = 2 * time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
	}
	var errs []error
	if o.rounds < 1 || o.rounds > 20 {
		errs = append(errs, fmt.Errorf("-rounds %d: 1 to 20", o.rounds))
	}
	if o.duration < 500*time.Millisecond || o.duration > 5*time.Minute {
		errs = append(errs, fmt.Errorf("-duration %v: 500ms to 5m", o.duration))
	}
	if o.warmup < 0 || o.warmup > time.Minute {
		errs = append(errs, fmt.Errorf("-warmup %v: 0 to 1m", o.warmup))
	}
	if o.callers < 0 || o.callers > 256 {
		errs = append(errs, fmt.Errorf("-concurrency %d: 0 to 256", o.callers))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return o, errUsage
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	root, err := findRoot()
	if err != nil {
		return err
	}
	if o.policies == "" {
		o.policies = filepath.Join(root, "policies")
	}
	if o.policies, err = filepath.Abs(o.policies); err != nil {
		return err
	}
	// The CPUs the sides run on; -1: not pinned.
	engCPU, cliCPU := engineCPU, clientCPU
	if o.pin {
		if err := checkPinning(); err != nil {
			return fmt.Errorf("%w (or run with -pin=false, whose figures are not comparable)", err)
		}
	} else {
		engCPU, cliCPU = -1, -1
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	rep := report{date: time.Now(), loadBefore: host.LoadAverage(), kernel: host.Kernel(), goVersion: runtime.Version(), opts: o}
	rep.policies = o.policies
	if rel, err := filepath.Rel(root, o.policies); err == nil && !strings.HasPrefix(rel, "..") {
		rep.policies = filepath.ToSlash(rel) + "/"
	}
	rep.model, rep.cpus = host.Machine()
	if rep.embeddedOPA, err = opabin.ModuleVersion(ctx); err != nil {
		return err
	}
	bin, opaVersion, err := ensureOPA(ctx, o.opa, rep.embeddedOPA, logf)
	if err != nil {
		return err
	}
	rep.serverOPA = opaVersion

	// What is measured must be valid first: every input gets a decision
	// from the policy (never a deny by the engine on its behalf), and the
	// server agrees with it.
	logf("loading %s with the embedded engine", o.policies)
	eng, err := loadEngine(ctx, o.policies)
	if err != nil {
		return err
	}
	rep.revision = eng.Revision()
	m, err := newMix(demoCalls, demoCallers())
	if err != nil {
		return err
	}
	want := make([]policy.Decision, len(m.distinct))
	for i, s := range m.distinct {
		d := eng.Decide(ctx, s.in, "")
		if d.Failed() {
			return fmt.Errorf("input %q: the embedded engine denied on the policy's behalf: %s: %s", s.label, d.Reason, d.Error)
		}
		want[i] = d
	}
	rep.mix = describeMix(m, want)

	logDir, err := os.MkdirTemp("", "crmgate-policycompare-")
	if err != nil {
		return err
	}
	defer func() {
		// A failed run keeps the server's log for the post-mortem.
		if err != nil && ctx.Err() == nil {
			logf("OPA server log kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	}()
	logf("starting the OPA server (%s) on CPU %s", bin, cpuName(engCPU))
	srv, err := startOPA(bin, o.policies, engCPU, filepath.Join(logDir, "opa.log"))
	if err != nil {
		return err
	}
	// Whatever happens from here on, the server does not outlive the run.
	defer srv.stop(3 * time.Second)
	if err := srv.waitHealthy(ctx, time.Minute); err != nil {
		return err
	}
	path, err := dataPath(policy.DefaultEntrypoint)
	if err != nil {
		return err
	}
	rep.dataPath = path
	if err := verify(ctx, newOPAClient(srv.url, path, 1), m, want); err != nil {
		return err
	}
	logf("%d distinct inputs: the OPA server gives the same decision as the embedded engine for each (%d allowed)", len(m.distinct), rep.mix.distinctAllowed)

	worker := func(side string, callers int) (measurement, error) {
		cpu := engCPU
		if side == sideOPA {
			cpu = cliCPU
		}
		a := workerArgs{side: side, policies: o.policies, url: srv.url, serverPID: srv.pid(),
			callers: callers, warmup: o.warmup, duration: o.duration}
		// Loading the engine runs the policy tests: a few seconds at most.
		return startWorker(ctx, self, cpu, a, o.warmup+o.duration+2*time.Minute)
	}
	for r := range o.rounds {
		order := []string{sideEmbedded, sideOPA}
		if r%2 == 1 {
			order = []string{sideOPA, sideEmbedded}
		}
		rd := round{first: order[0]}
		// A phase measures both sides with callers decisions in flight.
		type phase struct {
			callers int
			into    *pair
		}
		phases := []phase{{1, &rd.seq}}
		if o.callers > 0 {
			phases = append(phases, phase{o.callers, &rd.sat})
		}
		for _, ph := range phases {
			for _, side := range order {
				logf("round %d/%d: %s, %d in flight, %v", r+1, o.rounds, sideName(side), ph.callers, o.duration)
				meas, err := worker(side, ph.callers)
				if err != nil {
					return err
				}
				if err := srv.checkAlive(); err != nil {
					return err
				}
				logf("  %s decisions/s, p50 %s, p99 %s, CPU %s per decision", stats.Thousands(meas.rate()), us(float64(meas.P50Ns)/1e3), us(float64(meas.P99Ns)/1e3), us(meas.cpuPerDecisionUs()))
				if side == sideEmbedded {
					ph.into.emb = meas
				} else {
					ph.into.opa = meas
				}
			}
		}
		rep.rounds = append(rep.rounds, rd)
	}
	rep.loadAfter = host.LoadAverage()

	var b strings.Builder
	writeReport(&b, rep)
	fmt.Fprint(stdout, b.String())
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	rel, relErr := filepath.Rel(root, out)
	if relErr != nil || strings.HasPrefix(rel, "..") {
		rel = out
	}
	logf("report written to %s", rel)
	return nil
}

// verify asks the server for the decision on every distinct input and
// fails unless it allows or denies as the embedded engine did, for the
// same reason.
func verify(ctx context.Context, c *opaClient, m mix, want []policy.Decision) error {
	defer c.close()
	var errs []error
	for i, s := range m.distinct {
		got, err := c.Decide(ctx, s.in)
		if err != nil {
			return fmt.Errorf("input %q: %w", s.label, err)
		}
		if got.Allow != want[i].Allow || got.Reason != want[i].Reason {
			errs = append(errs, fmt.Errorf("input %q: OPA server: allow=%t (%q), embedded: allow=%t (%q)",
				s.label, got.Allow, got.Reason, want[i].Allow, want[i].Reason))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the OPA server and the embedded engine disagree; nothing was measured:\n%w", errors.Join(errs...))
	}
	return nil
}

// checkPinning checks what pinning the sides to CPUs needs.
func checkPinning() error {
	if runtime.GOOS != "linux" {
		return errors.New("pinning needs Linux (taskset, /proc)")
	}
	if n := runtime.NumCPU(); n < 2 {
		return fmt.Errorf("pinning needs 2 CPUs (one for the engine or the OPA server, one for the OPA client); this machine has %d", n)
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found: install util-linux")
	}
	return nil
}

// findRoot returns the repository's root: the closest folder upwards
// whose go.mod is crmgate's.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/crmgate/crmgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the crmgate repository: run it from the repository")
		}
		dir = parent
	}
}
