// Package e2e runs the real crmgate binary, with the sample CRM and real TLS,
// the way users and API clients meet it.
//
// Most tests browse at the HTTP level (internal/browsertest). The browser
// tests in browser_test.go drive a real headless Chromium through
// internal/chrometest instead: Debian's chromium must be installed (`make
// test-deps` installs it; without it they fail), it trusts the
// certificates the demo's gateway and IdP present and no others, and it
// saves a screenshot of each step as a test artifact. To keep them:
//
//	go test -race -run TestBrowserSignIn -artifacts ./e2e
//
// writes them under _artifacts/ in the current directory (go test prints
// the exact directory on an "=== ARTIFACTS" line); without -artifacts they
// are removed with the test's temporary files. A failed browser test logs
// what the pages wrote to the console and the browser's own output.
package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// binPath is the crmgate binary built for this test run.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crmgate-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "crmgate")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/crmgate")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building crmgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// demoJSON is the part of the demo.json contract these tests use.
type demoJSON struct {
	GatewayURL string `json:"gateway_url"`
	AdminURL   string `json:"admin_url"`
	CRMURL     string `json:"crm_url"`
	CACert     string `json:"ca_cert"`
	Config     string `json:"config"`
	Log        string `json:"log"`
	IdPURL     string `json:"idp_url"`
	AdminToken string `json:"admin_token"`
	APIKeys    []struct {
		Name   string   `json:"name"`
		Key    string   `json:"key"`
		Scopes []string `json:"scopes"`
		Tier   string   `json:"tier"`
	} `json:"api_keys"`
	JWKSURL string `json:"jwks_url"`
	Redis   string `json:"redis"`
	Users   []struct {
		Username   string   `json:"username"`
		Password   string   `json:"password"`
		TOTPSecret string   `json:"totp_secret"`
		Roles      []string `json:"roles"`
	} `json:"users"`
}

// demo is a running `crmgate demo`.
type demo struct {
	demoJSON
	dir    string
	pool   *x509.CertPool
	client *http.Client
	addr   string // host:port of the gateway
	// proc is the demo process; proc.stop interrupts it and waits.
	proc *process
}

// process is a running crmgate binary owned by a test.
type process struct {
	name   string
	done   chan struct{} // closed when the process has exited
	err    error         // its exit, once done is closed
	out    *lockedBuffer
	t      *testing.T
	once   sync.Once
	stopFn func()
}

// startProcess runs the crmgate binary with args; stop (also run when the
// test ends) interrupts it and waits, and logs its output if the test
// failed.
func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	p := &process{name: name, done: make(chan struct{}), out: &lockedBuffer{}, t: t}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	p.stopFn = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within 15s of SIGINT", name)
		}
		if t.Failed() {
			t.Logf("%s output (last 8 KiB):\n%s", name, tail(p.out.String(), 8192))
		}
	}
	t.Cleanup(p.stop)
	return p
}

func (p *process) stop() { p.once.Do(p.stopFn) }

// startDemo runs `crmgate demo` on free loopback ports and waits for its
// demo.json. Unless extra names a --policy (shipped: the demo's default),
// the demo runs without a policy stage (--policy none): the tests of the
// gateway's other stages are not about who may read what.
func startDemo(t *testing.T, extra ...string) *demo {
	t.Helper()
	dir := t.TempDir()
	if !slices.Contains(extra, "--policy") {
		extra = append([]string{"--policy", "none"}, extra...)
	}
	args := append([]string{"demo", "--data-dir", dir, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--crm-addr", "127.0.0.1:0", "--idp-addr", "127.0.0.1:0"}, extra...)
	p := startProcess(t, "crmgate demo", args...)
	out := p.out
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "crmgate.log")); err == nil {
				t.Logf("crmgate log (last 4 KiB):\n%s", tail(string(b), 4096))
			}
		}
	})
	var d demo
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		if err == nil && json.Unmarshal(b, &d.demoJSON) == nil {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("crmgate demo exited: %v\n%s", p.err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo.json after 60s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.dir = dir
	d.proc = p
	d.pool = loadPool(t, d.CACert)
	d.addr = strings.TrimPrefix(d.GatewayURL, "https://")
	d.client = newClient(d.pool, false)
	return &d
}

func loadPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificates in %s", caFile)
	}
	return pool
}

func newClient(pool *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: false,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		// The offer of an HTTP/1.1 client (and of raw): sessions signed
		// in by d.session are bound to it.
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// raw sends bytes over a fresh HTTP/1.1 TLS connection and returns what the
// gateway answered until it closed the connection or went quiet.
func (d *demo) raw(t *testing.T, payload string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: d.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A write may fail part-way: the gateway refuses an oversized or
	// malformed head and closes without reading the rest. What it answered
	// before closing is still there to read.
	_, _ = io.WriteString(conn, payload)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

// statuses lists the status codes of the HTTP/1.1 responses in a raw reply.
func statuses(reply string) []int {
	var out []int
	r := bufio.NewReader(strings.NewReader(reply))
	for {
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			return out
		}
		out = append(out, res.StatusCode)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

func (d *demo) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return d.do(t, d.client, "GET", path, nil, hdr...)
}

func (d *demo) do(t *testing.T, c *http.Client, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.GatewayURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		// Set the map directly: the client sends names exactly as given.
		req.Header[hdr[i]] = append(req.Header[hdr[i]], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return res, b
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
