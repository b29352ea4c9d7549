// Package pebbletest runs Pebble, Let's Encrypt's ACME test server, for
// tests: built from the module cache (it is a tool of this module, so go.mod
// pins its version), on loopback ports, stopped when the test ends.
//
// It is test support only; nothing in the gateway imports it.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running Pebble.
type Server struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// TrustedRootsFile is the CA of Pebble's own HTTPS certificate.
	TrustedRootsFile string
	// Roots holds Root, the CA that signs the certificates Pebble issues.
	Roots *x509.CertPool
	Root  *x509.Certificate
}

// Start builds and runs Pebble. Pebble validates challenges by connecting
// to localhost on httpPort (HTTP-01) and tlsPort (TLS-ALPN-01), for real:
// no "always valid" shortcut is set.
func Start(ctx context.Context, t testing.TB, httpPort, tlsPort int) *Server {
	t.Helper()
	const pkg = "github.com/letsencrypt/pebble/v2"
	dir := t.TempDir()
	bin := filepath.Join(dir, "pebble")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg+"/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("building pebble: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", pkg).Output()
	if err != nil {
		t.Fatalf("locating pebble's module: %v", err)
	}
	// Pebble's test certificate for its own HTTPS listeners, valid for
	// localhost and 127.0.0.1 and signed by pebble.minica.pem.
	certsDir := filepath.Join(strings.TrimSpace(string(out)), "test", "certs")

	listen, mgmt := FreePort(t), FreePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":             filepath.Join(certsDir, "localhost", "cert.pem"),
		"privateKey":              filepath.Join(certsDir, "localhost", "key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"ocspResponderURL":        "",
		"keyAlgorithm":            "ecdsa",
	}}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &logBuffer{}
	cmd := exec.Command(bin, "-config", cfgFile)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",      // validate at once instead of after a random sleep
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce errors: the run is deterministic
		"PEBBLE_AUTHZREUSE=0",      // every order is validated anew
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble log:\n%s", logs.String())
		}
	})

	p := &Server{
		DirectoryURL:     fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		TrustedRootsFile: filepath.Join(certsDir, "pebble.minica.pem"),
	}
	minicaPEM, err := os.ReadFile(p.TrustedRootsFile)
	if err != nil {
		t.Fatal(err)
	}
	minica := x509.NewCertPool()
	minica.AppendCertsFromPEM(minicaPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: minica}}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(url string) ([]byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return body, err
	}
	for {
		_, err := get(p.DirectoryURL)
		if err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("pebble exited:\n%s", logs.String())
		case <-ctx.Done():
			t.Fatalf("pebble not ready: %v (last error %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	rootPEM, err := get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", mgmt))
	if err != nil {
		t.Fatalf("fetching pebble's root: %v", err)
	}
	block, _ := pem.Decode(rootPEM)
	if block == nil {
		t.Fatalf("pebble's root is not PEM: %q", rootPEM)
	}
	p.Root, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("pebble's root: %v", err)
	}
	p.Roots = x509.NewCertPool()
	p.Roots.AddCert(p.Root)
	return p
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
