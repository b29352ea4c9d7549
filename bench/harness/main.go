// Command harness is crmgate's side-by-side benchmark. It installs and
// builds what it needs, starts a static upstream (nginx serving canned CRM
// JSON) and a development OpenID provider, and measures one configuration
// at a time on a core of its own: the upstream served directly, nginx,
// haproxy, Caddy, a bare Go reverse proxy, oauth2-proxy, and crmgate from
// its minimal setup up to the full pipeline, feature by feature. It
// reports throughput per core, CPU per request, latency under fixed load,
// memory and allocations, with ratios between them, and scaling curves as
// gnuplot PNGs, in bench/results/latest.md.
//
// It owns the orchestration only: what a configuration is lives in
// configs.go and crmgatecfg.go, the load generators and helper programs
// are separate commands, and nothing here is imported by the gateway.
// Everything it starts listens on 127.0.0.1 and ends with it, also on
// Ctrl-C and on errors. Run it through bench/run (see bench/README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/host"
)

// options are the command-line settings.
type options struct {
	rounds   int
	duration time.Duration // each measured run
	warmup   time.Duration
	conns    int
	out      string // report file, relative to the repository root unless absolute
	keep     bool   // keep the work folder (binaries, certificates, logs)
	seed     int64
	quick    bool
	curves   bool
	only     map[string]bool // configuration ids to measure; empty: all
	pprof    string          // folder for CPU profiles of crmgate's GET 2 KB runs; "": none
}

var errUsage = errors.New("usage")

func main() {
	dieWithParent()
	// Signals stay caught until run returns: the first one cancels ctx and
	// further ones (the parent-death signal can come more than once) must
	// not cut the cleanup short. Cleanup is bounded by the grace periods in
	// procs.stop; a kill -9 still takes the children along (sysProcAttr).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	// Read before stop, which cancels ctx as well.
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case err == nil:
	case interrupted:
		fmt.Fprintln(os.Stderr, "bench: interrupted; every process it started has been stopped")
		os.Exit(130)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench/run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rounds, "rounds", 5, "rounds; each measures every configuration once, in a random order")
	fs.BoolVar(&o.quick, "quick", false, "1 round of 1s runs, fewer workloads and curve points (a smoke test, under 3 minutes once the tools are built)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each measured run (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "wrk warm-up after each start (whole seconds)")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections of wrk and of the load generator")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results", "latest.md"), "report file; the graphs go next to it")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (binaries, certificates, configurations, logs)")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the order of configurations; 0: from the clock")
	fs.BoolVar(&o.curves, "curves", true, "measure the latency points and scaling curves after the rounds")
	fs.StringVar(&o.pprof, "pprof", "", "folder to write a CPU profile of each crmgate configuration's measured GET 2 KB run to (admin.pprof on; read with go tool pprof); empty: none")
	only := fs.String("only", "", "comma-separated configuration ids to measure (e.g. C4,C6); empty: all")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench/run [-quick] [-rounds N] [flags]\n\nMeasures crmgate side by side with nginx, haproxy, Caddy, oauth2-proxy and a bare Go reverse proxy; see bench/README.md.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return o, errUsage
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = time.Second
		}
		if !set["warmup"] {
			o.warmup = time.Second
		}
	}
	var errs []error
	if o.rounds < 1 || o.rounds > 20 {
		errs = append(errs, fmt.Errorf("-rounds %d: 1 to 20", o.rounds))
	}
	for name, d := range map[string]time.Duration{"duration": o.duration, "warmup": o.warmup} {
		if d < time.Second || d > 5*time.Minute || d%time.Second != 0 {
			errs = append(errs, fmt.Errorf("-%s %v: whole seconds from 1s to 5m (wrk counts in seconds)", name, d))
		}
	}
	if o.conns < 1 || o.conns > 1024 {
		errs = append(errs, fmt.Errorf("-conns %d: 1 to 1024", o.conns))
	}
	o.only = map[string]bool{}
	for id := range strings.SplitSeq(*only, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if _, ok := configByID(id); !ok {
			errs = append(errs, fmt.Errorf("-only: no configuration %q", id))
		}
		o.only[id] = true
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(stderr, err)
		return o, errUsage
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if runtime.GOOS != "linux" {
		return errors.New("the benchmark needs Linux (taskset pins the processes to CPUs)")
	}
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("the benchmark needs 2 CPUs (one for the server under test, one for upstream and load); this machine has %d", runtime.NumCPU())
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }

	root, err := findRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "crmgate-bench-")
	if err != nil {
		return err
	}
	defer func() {
		// A failed run keeps its logs for the post-mortem; an interrupted
		// one does not, unless asked.
		if o.keep || (err != nil && ctx.Err() == nil) {
			logf("work folder kept: %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	e := &env{
		root: root, work: work,
		bin: filepath.Join(work, "bin"), tlsDir: filepath.Join(work, "tls"), www: filepath.Join(work, "www"),
		procs: newProcs(filepath.Join(work, "logs")),
	}
	if o.pprof != "" {
		if e.pprofDir, err = filepath.Abs(o.pprof); err != nil {
			return err
		}
		if err := os.MkdirAll(e.pprofDir, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{e.bin, e.tlsDir, e.www, e.procs.logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Whatever happens from here on, no server outlives the harness.
	defer e.procs.stopAll()

	m := meta{date: time.Now(), loadBefore: host.LoadAverage(), kernel: host.Kernel(), opts: o}
	m.model, m.cpus = host.Machine()
	m.flags = host.FlagSummary()

	if err := ensureTools(ctx, e, logf); err != nil {
		return err
	}
	logf("building crmgate and the benchmark programs")
	if err := build(ctx, e); err != nil {
		return err
	}
	m.goVersion, m.versions = e.goVer, e.versions
	if err := prepare(e); err != nil {
		return err
	}
	logf("starting the upstream and the identity provider on CPU %d", loadCPU)
	if err := startUpstream(ctx, e); err != nil {
		return err
	}
	if err := startIdP(ctx, e); err != nil {
		return err
	}

	b := &bench{e: e, opts: o, logf: logf}
	res := &results{runs: map[string][]measurement{}, latency: map[string][]loadPoint{}, conc: map[string][]curvePoint{}, size: map[string][]curvePoint{}, hs: map[string][]curvePoint{}}
	var configs []configuration
	for _, c := range configurations {
		if _, ok := b.selected(c.id); ok {
			configs = append(configs, c)
		}
	}
	if err := b.runRounds(ctx, configs, res); err != nil {
		return err
	}
	res.c4Sat = med(summarizeKey(res.runs[key("C4", "get2k")]).rps)
	if o.curves {
		if err := b.runLatency(ctx, res); err != nil {
			return err
		}
		if err := b.runCurves(ctx, res); err != nil {
			return err
		}
		if len(o.only) == 0 {
			if err := b.runPrograms(ctx, res); err != nil {
				return err
			}
		}
	}
	if err := e.upstream.checkAlive(); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	m.loadAfter = host.LoadAverage()
	m.elapsed = time.Since(m.date)

	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := writePlots(ctx, e, filepath.Dir(out), res); err != nil {
		logf("graphs: %v", err)
	}
	var report strings.Builder
	writeReport(&report, m, res)
	fmt.Fprint(stdout, report.String())
	if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
		return err
	}
	rel, relErr := filepath.Rel(root, out)
	if relErr != nil || strings.HasPrefix(rel, "..") {
		rel = out
	}
	logf("report written to %s (graphs next to it)", rel)
	return nil
}
