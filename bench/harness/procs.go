package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs starts the harness's child processes and makes sure they end.
// Every child runs in its own process group, so that ending it also ends
// whatever it started, and the group is what gets signalled. Children also
// get SIGKILL if the harness itself dies without cleaning up (see
// sysProcAttr).
type procs struct {
	logDir string

	mu   sync.Mutex
	live map[*proc]struct{}
}

// proc is one started long-running child.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited
	err     error         // its exit status; read only after done
}

func newProcs(logDir string) *procs {
	return &procs{logDir: logDir, live: map[*proc]struct{}{}}
}

// pinned returns argv run on CPU cpu through taskset; cpu < 0 means not
// pinned.
func pinned(cpu int, argv ...string) []string {
	if cpu < 0 {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// start runs argv in the background with env added to the harness's
// environment; its stdout and stderr go to logDir/name.log.
func (ps *procs) start(name string, env []string, argv ...string) (*proc, error) {
	logPath := filepath.Join(ps.logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	ps.mu.Lock()
	ps.live[p] = struct{}{}
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether p has ended, and how.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		if p.err == nil {
			return true, errors.New("exited")
		}
		return true, p.err
	default:
		return false, nil
	}
}

// checkAlive fails if p has ended: numbers measured meanwhile would
// describe a crash, not a server.
func (p *proc) checkAlive() error {
	if done, err := p.exited(); done {
		return fmt.Errorf("%s ended during the measurement: %v; its log (%s) ends:\n%s", p.name, err, p.logPath, p.logTail())
	}
	return nil
}

// logTail returns the last lines of p's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// stop ends p's process group: SIGTERM, then SIGKILL if it has not exited
// within grace. It is safe to call more than once.
func (ps *procs) stop(p *proc, grace time.Duration) {
	ps.mu.Lock()
	delete(ps.live, p)
	ps.mu.Unlock()
	if done, _ := p.exited(); done {
		killGroup(p.cmd.Process.Pid, syscall.SIGKILL) // anything it left behind
		return
	}
	killGroup(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	killGroup(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stopAll ends every child still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	live := make([]*proc, 0, len(ps.live))
	for p := range ps.live {
		live = append(live, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range live {
		wg.Go(func() { ps.stop(p, 3*time.Second) })
	}
	wg.Wait()
}

// run runs argv to completion, for at most timeout, and returns its
// stdout. The process group is killed when ctx ends or the time is up, so
// a hung load generator cannot outlive its run.
func (ps *procs) run(ctx context.Context, timeout time.Duration, env []string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid, syscall.SIGKILL) // children it may have left
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s: still running after %v: killed", filepath.Base(argv[0]), timeout)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// killGroup signals the process group led by pid. ESRCH (already gone) is
// not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return nil
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
