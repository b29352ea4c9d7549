package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
	"github.com/crmgate/crmgate/policy"
)

// workerArgs are the settings of one worker run: one side, one number of
// callers, one measured window.
type workerArgs struct {
	side      string
	policies  string
	url       string // the OPA server's base URL (side opa)
	serverPID int    // the OPA server's process (side opa)
	callers   int
	warmup    time.Duration
	duration  time.Duration
}

// argv is the worker's command line after the program's name.
func (a workerArgs) argv() []string {
	return []string{"worker",
		"-side", a.side,
		"-policies", a.policies,
		"-url", a.url,
		"-server-pid", strconv.Itoa(a.serverPID),
		"-callers", strconv.Itoa(a.callers),
		"-warmup", a.warmup.String(),
		"-duration", a.duration.String(),
	}
}

// runWorkerCommand is `policycompare worker ...`: it measures one window
// of one side in this process and prints the measurement as JSON. The
// coordinator starts it pinned to a CPU with GOMAXPROCS=1, so that each
// side's decisions get the same single core.
func runWorkerCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var a workerArgs
	fs := flag.NewFlagSet("policycompare worker", flag.ContinueOnError)
	fs.StringVar(&a.side, "side", "", "embedded or opa")
	fs.StringVar(&a.policies, "policies", "", "policy folder")
	fs.StringVar(&a.url, "url", "", "the OPA server's base URL (side opa)")
	fs.IntVar(&a.serverPID, "server-pid", 0, "the OPA server's process id, for its CPU time (side opa)")
	fs.IntVar(&a.callers, "callers", 1, "decisions in flight at once")
	fs.DurationVar(&a.warmup, "warmup", 2*time.Second, "warm-up before the measured window")
	fs.DurationVar(&a.duration, "duration", 10*time.Second, "measured window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if a.callers < 1 || a.callers > 256 || a.duration <= 0 || a.warmup < 0 {
		return errors.New("-callers must be 1 to 256, -duration positive and -warmup not negative")
	}
	m, err := newMix(demoCalls, demoCallers())
	if err != nil {
		return err
	}

	var decide decideFunc
	serverPID := 0
	switch a.side {
	case sideEmbedded:
		eng, err := loadEngine(ctx, a.policies)
		if err != nil {
			return err
		}
		decide = func(ctx context.Context, i int) error {
			if d := eng.Decide(ctx, m.distinct[i].in, ""); d.Failed() {
				return fmt.Errorf("%s: %s: %s", m.distinct[i].label, d.Reason, d.Error)
			}
			return nil
		}
	case sideOPA:
		u, err := url.Parse(a.url)
		if err != nil || u.Scheme != "http" || u.Host == "" || u.Path != "" {
			return fmt.Errorf("-url %q: want http://127.0.0.1:port", a.url)
		}
		if err := loopback.Check(u.Host); err != nil {
			return fmt.Errorf("-url: %w", err)
		}
		path, err := dataPath(policy.DefaultEntrypoint)
		if err != nil {
			return err
		}
		c := newOPAClient(a.url, path, a.callers)
		defer c.close()
		decide = func(ctx context.Context, i int) error {
			_, err := c.Decide(ctx, m.distinct[i].in)
			if err != nil {
				return fmt.Errorf("%s: %w", m.distinct[i].label, err)
			}
			return nil
		}
		serverPID = a.serverPID
	default:
		return fmt.Errorf("-side %q: want %s or %s", a.side, sideEmbedded, sideOPA)
	}
	res, err := window(ctx, a.side, a.callers, m.order, a.warmup, a.duration, serverPID, decide)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// evalTimeout is the engine's evaluation deadline here. Every decision
// arms and stops its timer as in the gateway, whatever its length; a long
// one only keeps a stall of a busy shared machine (a decision preempted
// for more than the default 50 ms) from ending the run as a deny.
const evalTimeout = 10 * time.Second

// loadEngine loads the policy folder with the engine crmgate embeds, at
// its defaults but for evalTimeout and decision reuse. Load also runs the folder's tests, as
// the gateway does.
func loadEngine(ctx context.Context, dir string) (*policy.Engine, error) {
	// Reuse off: every decision is an evaluation, as every request to
	// the OPA server is; the gateway's reuse of an identical input's
	// decision is measured end to end, not here.
	cfg := policy.Config{Dir: dir, Reload: policy.ReloadOff, EvalTimeout: evalTimeout, Reuse: policy.ReuseOff}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	eng, err := policy.New(cfg, policy.Options{})
	if err != nil {
		return nil, err
	}
	if err := eng.Load(ctx); err != nil {
		return nil, err
	}
	return eng, nil
}

// startWorker runs a worker on cpu (< 0: not pinned) with GOMAXPROCS=1
// and returns its measurement. The worker runs in its own process group,
// which is killed when ctx ends or timeout passes.
func startWorker(ctx context.Context, self string, cpu int, a workerArgs, timeout time.Duration) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := pinned(cpu, append([]string{self}, a.argv()...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return measurement{}, fmt.Errorf("%s worker: still running after %v: killed", a.side, timeout)
		}
		return measurement{}, ctx.Err()
	}
	if err != nil {
		return measurement{}, fmt.Errorf("%s worker: %w: %s", a.side, err, strings.TrimSpace(stderr.String()))
	}
	var m measurement
	if err := json.Unmarshal([]byte(stdout.String()), &m); err != nil {
		return measurement{}, fmt.Errorf("%s worker: %w in %q", a.side, err, stdout.String())
	}
	if m.Side != a.side || m.Callers != a.callers || m.Decisions == 0 {
		return measurement{}, fmt.Errorf("%s worker: unexpected result %+v", a.side, m)
	}
	return m, nil
}

// pinned returns argv run on CPU cpu through taskset; cpu < 0 means not
// pinned.
func pinned(cpu int, argv ...string) []string {
	if cpu < 0 {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}
