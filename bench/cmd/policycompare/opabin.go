package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// opaModule is the module path of OPA: the library crmgate embeds and the
// command this program runs as the server.
const opaModule = "github.com/open-policy-agent/opa"

// opaModuleVersion is the version of OPA this program was built with,
// which is the one go.mod requires: the server must run the same
// evaluator as the embedded engine.
func opaModuleVersion() (string, error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information in this binary; pass -opa")
	}
	for _, d := range bi.Deps {
		if d.Path != opaModule {
			continue
		}
		if d.Replace != nil {
			return "", fmt.Errorf("%s is replaced by %s in go.mod; pass -opa with a matching binary", opaModule, d.Replace.Path)
		}
		return d.Version, nil
	}
	return "", fmt.Errorf("%s is not a dependency of this binary; pass -opa", opaModule)
}

// binaryVersion runs `opa version` and returns the version it reports,
// without the leading v: 1.22.2.
func binaryVersion(ctx context.Context, bin string) (string, error) {
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

// ensureOPA returns the path of an opa binary of version and its reported
// version. A binary given with -opa is used as it is. Otherwise the binary
// is built once with `go install` into the Go build cache's folder
// (crmgate-bench/opa-<version>/ below `go env GOCACHE`), outside the
// repository, and reused by later runs; `go clean -cache` leaves it.
func ensureOPA(ctx context.Context, given, version string, logf func(string, ...any)) (bin, reported string, err error) {
	if given != "" {
		reported, err := binaryVersion(ctx, given)
		if err != nil {
			return "", "", err
		}
		if "v"+reported != version {
			logf("warning: %s is OPA %s, but crmgate embeds OPA %s: the comparison is between two versions", given, reported, version)
		}
		return given, reported, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", "", errors.New("go not found in PATH: it builds the opa binary; pass -opa to use one you have")
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOCACHE").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOCACHE: %w", err)
	}
	cache := strings.TrimSpace(string(out))
	if cache == "" || cache == "off" || !filepath.IsAbs(cache) {
		return "", "", fmt.Errorf("no Go build cache (GOCACHE=%q) to keep the opa binary in; pass -opa", cache)
	}
	dir := filepath.Join(cache, "crmgate-bench", "opa-"+version)
	bin = filepath.Join(dir, "opa")
	if reported, err := binaryVersion(ctx, bin); err == nil && "v"+reported == version {
		logf("using %s (OPA %s)", bin, reported)
		return bin, reported, nil
	}

	// Build into a fresh folder and move the result in place, so that an
	// interrupted build never leaves a binary that looks usable.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "opa-build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	pkg := opaModule + "@" + version
	logf("building the opa command: GOBIN=%s go install %s", dir, pkg)
	logf("(first run only: this downloads OPA's dependencies through the Go module proxy and takes a few minutes)")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "install", pkg)
	// Outside the repository, so that nothing of crmgate's go.mod applies:
	// `go install pkg@version` builds OPA with OPA's own go.mod, as its
	// releases are built.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+tmp)
	// Its progress ("go: downloading ...") and errors go to stderr as
	// they come.
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// The go command starts compilers of its own: on Ctrl-C, its whole
	// process group ends.
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("go install %s: %w (see above); pass -opa to use an opa binary you have", pkg, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	if err := os.Rename(filepath.Join(tmp, "opa"), bin); err != nil {
		return "", "", err
	}
	reported, err = binaryVersion(ctx, bin)
	if err != nil {
		return "", "", err
	}
	logf("built %s (OPA %s) in %s", bin, reported, time.Since(start).Round(time.Second))
	return bin, reported, nil
}
