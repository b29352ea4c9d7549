package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// aptTools are the commands the comparison needs from the distribution,
// with the Debian package that provides each.
var aptTools = []struct{ cmd, pkg string }{
	{"taskset", "util-linux"},
	{"wrk", "wrk"},
	{"nginx", "nginx-light"},
	{"haproxy", "haproxy"},
	{"redis-server", "redis-server"},
	{"gnuplot", "gnuplot-nox"},
	{"hey", "hey"},
}

// goTool is a third-party server built from the Go module proxy.
type goTool struct {
	name    string // binary name
	pkg     string // package path of its main package
	version string
}

// goTools are the third-party Go servers of the comparison, at fixed
// versions so that runs compare.
var goTools = []goTool{
	{"caddy", "github.com/caddyserver/caddy/v2/cmd/caddy", "v2.11.9"},
	{"oauth2-proxy", "github.com/oauth2-proxy/oauth2-proxy/v7", "v7.15.4"},
	{"opa", "github.com/open-policy-agent/opa", "v1.22.2"},
}

// ensureTools finds the distribution's tools, installing missing ones
// with apt-get when running as root, and builds the Go servers.
func ensureTools(ctx context.Context, e *env, logf func(string, ...any)) error {
	var missing []string
	for _, t := range aptTools {
		if _, err := exec.LookPath(t.cmd); err != nil {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) > 0 {
		if os.Geteuid() != 0 {
			return fmt.Errorf("missing tools: install them with `sudo apt-get install -y %s` and run again", strings.Join(missing, " "))
		}
		logf("installing %s with apt-get", strings.Join(missing, " "))
		if err := aptInstall(ctx, e, missing...); err != nil {
			return fmt.Errorf("apt-get install: %w", err)
		}
	}
	e.tools = map[string]string{}
	for _, t := range aptTools {
		p, err := exec.LookPath(t.cmd)
		if err != nil {
			return fmt.Errorf("%s still not found after apt-get install %s", t.cmd, t.pkg)
		}
		e.tools[t.cmd] = p
	}
	out, _ := exec.CommandContext(ctx, e.tools["wrk"], "-v").CombinedOutput()
	e.versions = append(e.versions, firstLine(strings.Split(string(out), "Copyright")[0]))
	out, _ = exec.CommandContext(ctx, e.tools["nginx"], "-v").CombinedOutput()
	e.versions = append(e.versions, strings.TrimPrefix(firstLine(string(out)), "nginx version: "))
	out, _ = exec.CommandContext(ctx, e.tools["haproxy"], "-v").CombinedOutput()
	e.versions = append(e.versions, strings.Join(strings.Fields(firstLine(string(out)))[:3], " "))
	out, _ = exec.CommandContext(ctx, e.tools["redis-server"], "--version").CombinedOutput()
	e.versions = append(e.versions, strings.Join(strings.Fields(firstLine(string(out)))[:3], " "))
	for _, t := range goTools {
		bin, err := goInstall(ctx, t, logf)
		if err != nil {
			return err
		}
		e.tools[t.name] = bin
		e.versions = append(e.versions, t.name+" "+t.version)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func aptInstall(ctx context.Context, e *env, pkgs ...string) error {
	envv := []string{"DEBIAN_FRONTEND=noninteractive"}
	// Debian starts nginx and redis-server on installation unless told
	// not to; the benchmark starts its own on loopback.
	args := append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, pkgs...)
	if _, err := e.procs.run(ctx, 10*time.Minute, envv, args...); err == nil {
		return nil
	}
	if _, err := e.procs.run(ctx, 5*time.Minute, envv, "apt-get", "update"); err != nil {
		return err
	}
	_, err := e.procs.run(ctx, 10*time.Minute, envv, args...)
	return err
}

// goInstall returns the binary of t, building it once with `GOBIN=dir go
// install pkg@version` into crmgate-bench/NAME-VERSION/ below the Go
// build cache's folder, outside the repository (so nothing of crmgate's
// go.mod applies), and reusing it afterwards.
func goInstall(ctx context.Context, t goTool, logf func(string, ...any)) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go not found in PATH")
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	if cache == "" || cache == "off" || !filepath.IsAbs(cache) {
		return "", fmt.Errorf("no Go build cache (GOCACHE=%q) to keep %s in", cache, t.name)
	}
	dir := filepath.Join(cache, "crmgate-bench", t.name+"-"+t.version)
	bin := filepath.Join(dir, t.name)
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	// Build into a fresh folder and move the result in place, so that an
	// interrupted build never leaves a binary that looks usable.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), t.name+"-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	pkg := t.pkg + "@" + t.version
	logf("building %s: GOBIN=%s go install %s (first run only; takes minutes)", t.name, dir, pkg)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", pkg)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w", pkg, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, t.name), bin); err != nil {
		return "", err
	}
	logf("built %s in %s", t.name, time.Since(start).Round(time.Second))
	return bin, nil
}
