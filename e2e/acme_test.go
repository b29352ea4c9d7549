package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/pebbletest"
)

// The real binary obtains its certificate from a real ACME server (Pebble,
// which validates each challenge by connecting back) and serves with it.
func TestServeWithACME(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "crm") }))
			defer up.Close()
			httpPort, httpsPort := pebbletest.FreePort(t), pebbletest.FreePort(t)
			peb := pebbletest.Start(ctx, t, httpPort, httpsPort)

			dir := t.TempDir()
			cfg := fmt.Sprintf(`listen:
  https: "127.0.0.1:%d"
  http: "127.0.0.1:%d"
tls:
  source: acme
  acme:
    email: ops@example.com
    domains: [localhost]
    directory_url: %q
    trusted_roots_file: %q
    storage: %q
    challenges: [%s]
admin:
  listen: "127.0.0.1:0"
upstreams:
  crm:
    url: %q
routes:
  - id: home
    path: /
    upstream: crm
    auth: none
`, httpsPort, httpPort, peb.DirectoryURL, peb.TrustedRootsFile, filepath.Join(dir, "acme"), challenge, up.URL)
			path := filepath.Join(dir, "crmgate.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out := &lockedBuffer{}
			cmd := exec.Command(binPath, "serve", "-c", path)
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Signal(os.Interrupt)
				_ = cmd.Wait()
				if t.Failed() {
					t.Logf("crmgate output:\n%s", tail(out.String(), 6000))
				}
			}()

			addr := fmt.Sprintf("127.0.0.1:%d", httpsPort)
			tc := &tls.Config{ServerName: "localhost", RootCAs: peb.Roots}
			for {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, tc)
				if err == nil {
					conn.Close()
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("no certificate from the ACME server: last handshake error %v", err)
				case <-time.After(200 * time.Millisecond):
				}
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
			res, err := client.Get("https://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(body) != "crm" {
				t.Errorf("GET / = %d %q, want 200 from the upstream", res.StatusCode, body)
			}
			if chain := res.TLS.VerifiedChains[0]; !chain[len(chain)-1].Equal(peb.Root) {
				t.Errorf("certificate does not chain to the ACME server's root")
			}

			// The plain-HTTP listener only redirects.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err = noFollow.Get(fmt.Sprintf("http://localhost:%d/api/x?y=1", httpPort))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			want := fmt.Sprintf("https://localhost:%d/api/x?y=1", httpsPort)
			if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
				t.Errorf("plain HTTP = %d %q, want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
			}
			if strings.Contains(out.String(), "panic") {
				t.Errorf("crmgate panicked")
			}
		})
	}
}
