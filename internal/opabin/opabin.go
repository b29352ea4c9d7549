// Package opabin provides the opa command of the OPA version crmgate
// embeds, for the tests and benchmarks that compare the embedded engine
// with an OPA server (`opa run --server`): it finds the version go.mod
// requires and builds that command once with `go install` into the Go
// build cache's folder, outside the repository, where later runs (and
// the benchmark harness) find it again.
//
// It does not run the server: internal/opatest does that for tests,
// bench/cmd/policycompare and bench/harness for the benchmarks.
package opabin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// Module is the module path of OPA: the library crmgate embeds and the
// command the comparisons run as the server.
const Module = "github.com/open-policy-agent/opa"

// ModuleVersion is the version of OPA that crmgate is built with (v1.22.2):
// the running binary's, or, in a test binary (which records no
// dependencies), the one `go list -m` reports for the module in the
// current folder. A replaced module is an error: no opa command of that
// version can be installed.
func ModuleVersion(ctx context.Context) (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path != Module {
				continue
			}
			if d.Replace != nil {
				return "", fmt.Errorf("%s is replaced by %s in go.mod; no opa command of its version can be installed", Module, d.Replace.Path)
			}
			return d.Version, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-json", Module).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", Module, err)
	}
	var m struct {
		Version string
		Replace *struct{ Path string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go list -m %s: %w", Module, err)
	}
	if m.Replace != nil {
		return "", fmt.Errorf("%s is replaced by %s in go.mod; no opa command of its version can be installed", Module, m.Replace.Path)
	}
	if m.Version == "" {
		return "", fmt.Errorf("go list -m %s: no version", Module)
	}
	return m.Version, nil
}

// Version runs `bin version` and returns the version it reports,
// without the leading v: 1.22.2.
func Version(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s version: no Version line in %q", bin, out)
}

// Dir is the folder an opa command of version is kept in:
// crmgate-bench/opa-<version>/ below `go env GOCACHE`. `go clean -cache`
// removes it with the cache.
func Dir(ctx context.Context, version string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	if cache == "" || cache == "off" || !filepath.IsAbs(cache) {
		return "", fmt.Errorf("no Go build cache (GOCACHE=%q) to keep the opa command in", cache)
	}
	return filepath.Join(cache, "crmgate-bench", "opa-"+version), nil
}

// Ensure returns the path of an opa command of version (v1.22.2), building
// it first if Dir holds none: `GOBIN=DIR go install
// github.com/open-policy-agent/opa@version`, outside the repository so
// that OPA is built with its own go.mod, as its releases are. The first
// build downloads OPA's dependencies through the Go module proxy and
// compiles them: minutes. Processes that ask at once wait for one build.
// logf receives progress; nil discards it.
func Ensure(ctx context.Context, version string, logf func(string, ...any)) (string, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go not found in PATH: it builds the opa command")
	}
	dir, err := Dir(ctx, version)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "opa")
	usable := func() bool {
		v, err := Version(ctx, bin)
		return err == nil && "v"+v == version
	}
	if usable() {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if usable() { // built by another process while this one waited
		return bin, nil
	}

	// Build into a fresh folder and move the result in place, so that an
	// interrupted build never leaves a command that looks usable.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "opa-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	pkg := Module + "@" + version
	logf("building the opa command: GOBIN=%s go install %s", dir, pkg)
	logf("(first run only: this downloads OPA's dependencies through the Go module proxy and takes a few minutes)")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", pkg)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// The go command starts compilers of its own: on cancellation, its
	// whole process group ends.
	setGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", pkg, err, out.String())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "opa"), bin); err != nil {
		return "", err
	}
	if !usable() {
		return "", fmt.Errorf("%s: built, but it does not report version %s", bin, version)
	}
	logf("built %s in %s", bin, time.Since(start).Round(time.Second))
	return bin, nil
}
