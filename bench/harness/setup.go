package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// env is what every run shares: the built binaries, the certificates, the
// running upstream and the tools.
type env struct {
	root     string // repository root
	path     string // the measured request target, e.g. /api/contacts/42
	work     string // temporary folder: bin/, tls/, logs/, config files
	bin      string
	tlsDir   string
	wrk      string
	procs    *procs
	caPool   *x509.CertPool
	caFile   string
	cert     string
	key      string
	upAddr   string // the upstream's plain-HTTP address
	upstream *proc
	goVer    string
	wrkVer   string
	started  time.Time
}

// findRoot returns the directory holding the module's go.mod, searching
// upwards from the working directory.
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
			return "", errors.New("not inside the crmgate repository: run bench/run from the repository")
		}
		dir = parent
	}
}

// ensureTools finds taskset and wrk, installing wrk from the distribution
// when running as root.
func ensureTools(ctx context.Context, e *env, logf func(string, ...any)) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found: install util-linux")
	}
	path, err := exec.LookPath("wrk")
	if err != nil {
		if os.Geteuid() != 0 {
			return errors.New("wrk not found: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) and run again")
		}
		logf("wrk not found; installing it with apt-get")
		if err := aptInstall(ctx, e, "wrk"); err != nil {
			return fmt.Errorf("installing wrk: %w", err)
		}
		if path, err = exec.LookPath("wrk"); err != nil {
			return errors.New("wrk still not found after apt-get install")
		}
	}
	e.wrk = path
	// wrk -v prints its version and usage, and exits with status 1.
	out, _ := exec.CommandContext(ctx, path, "-v").CombinedOutput()
	e.wrkVer, _, _ = strings.Cut(string(out), "\n")
	e.wrkVer = strings.TrimSpace(strings.Split(e.wrkVer, "Copyright")[0])
	return nil
}

func aptInstall(ctx context.Context, e *env, pkg string) error {
	envv := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := e.procs.run(ctx, 5*time.Minute, envv, "apt-get", "install", "-y", pkg); err == nil {
		return nil
	}
	if _, err := e.procs.run(ctx, 5*time.Minute, envv, "apt-get", "update"); err != nil {
		return err
	}
	_, err := e.procs.run(ctx, 5*time.Minute, envv, "apt-get", "install", "-y", pkg)
	return err
}

// build compiles the gateway and the benchmark's programs into e.bin.
func build(ctx context.Context, e *env) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("go not found in PATH")
	}
	out, err := e.procs.run(ctx, 5*time.Minute, nil, gobin, "env", "GOVERSION")
	if err != nil {
		return err
	}
	e.goVer = strings.TrimSpace(string(out))
	_, err = e.procs.run(ctx, 10*time.Minute, nil, gobin, "build", "-C", e.root, "-o", e.bin+string(filepath.Separator),
		"./cmd/crmgate", "./bench/cmd/upstream", "./bench/cmd/baseline", "./bench/cmd/load")
	return err
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process could take it before the server binds it; the
// server then fails to start and says so.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// waitReady polls check every 50 ms until it succeeds, p exits, or
// timeout passes.
func waitReady(ctx context.Context, p *proc, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s %v before it was ready; its log (%s) ends:\n%s", p.name, err, p.logPath, p.logTail())
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v; its log (%s) ends:\n%s", p.name, timeout, last, p.logPath, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// getOK returns nil if GET url answers 200. HTTPS URLs are verified against
// pool.
func getOK(ctx context.Context, pool *x509.CertPool, url, header string) error {
	tr := &http.Transport{
		Proxy:             nil,
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if name, value, ok := strings.Cut(header, ":"); ok {
		req.Header.Set(name, strings.TrimSpace(value))
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return nil
}

// startUpstream starts the sample CRM on CPU 1, where it stays for the
// whole run.
func startUpstream(ctx context.Context, e *env) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := e.procs.start("upstream", []string{"GOMAXPROCS=1"},
		pinned(loadCPU, filepath.Join(e.bin, "upstream"), "-addr", addr)...)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, p, 20*time.Second, func(ctx context.Context) error {
		return getOK(ctx, nil, "http://"+addr+"/healthz", "")
	}); err != nil {
		return err
	}
	e.upAddr, e.upstream = addr, p
	return nil
}

// makeCerts has crmgate create its development CA and leaf certificate:
// it starts the gateway once with the benchmark's configuration, waits
// until it serves, and stops it. The same files then serve every
// configuration, so all three present the same certificate.
func makeCerts(ctx context.Context, e *env) error {
	srv, err := startCrmgate(ctx, e, "crmgate-certs")
	if err != nil {
		return fmt.Errorf("creating the development CA with crmgate: %w", err)
	}
	defer e.procs.stop(srv.proc, 5*time.Second)

	e.caFile = filepath.Join(e.tlsDir, "ca.pem")
	e.cert = filepath.Join(e.tlsDir, "cert.pem")
	e.key = filepath.Join(e.tlsDir, "key.pem")
	pem, err := os.ReadFile(e.caFile)
	if err != nil {
		return fmt.Errorf("development CA: %w", err)
	}
	e.caPool = x509.NewCertPool()
	if !e.caPool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s: no PEM certificate", e.caFile)
	}
	pair, err := tls.LoadX509KeyPair(e.cert, e.key)
	if err != nil {
		return fmt.Errorf("development leaf certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(c); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: e.caPool, Intermediates: inter}); err != nil {
		return fmt.Errorf("%s does not verify for localhost against %s: %w", e.cert, e.caFile, err)
	}
	// The gateway serves the measured URL through the upstream: the whole
	// chain works before anything is measured.
	if err := getOK(ctx, e.caPool, srv.url, srv.header); err != nil {
		return fmt.Errorf("crmgate with the benchmark configuration: %w", err)
	}
	return nil
}
