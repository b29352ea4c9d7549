package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The upstream requires a client certificate and has a certificate from a
// private CA: the gateway verifies it with ca_file and presents its own.
func TestUpstreamMutualTLS(t *testing.T) {
	serverCert, serverPool := testCert(t)
	clientCert, clientPool := testCert(t)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client cert", 401)
			return
		}
		io.WriteString(w, "mtls ok")
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientPool}
	up.StartTLS()
	defer up.Close()
	_ = serverPool

	dir := t.TempDir()
	ca := writePEM(t, dir, "ca.pem", "CERTIFICATE", serverCert.Certificate[0])
	crt := writePEM(t, dir, "client.pem", "CERTIFICATE", clientCert.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	key := writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)

	tests := []struct {
		name string
		cfg  UpstreamConfig
		want int
	}{
		{"verified with ca_file and client cert", UpstreamConfig{URL: up.URL, CAFile: ca, ClientCert: crt, ClientKey: key, ServerName: "localhost"}, 200},
		{"unknown CA refused", UpstreamConfig{URL: up.URL, ClientCert: crt, ClientKey: key, ServerName: "localhost"}, 502},
		{"no client cert refused", UpstreamConfig{URL: up.URL, CAFile: ca, ServerName: "localhost"}, 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGateway(t, up.URL, func(c *Config) { c.Upstreams["crm"] = tt.cfg })
			w, _ := do(g, req("GET", "/api/contacts"))
			if w.Code != tt.want {
				t.Errorf("status %d (%s), want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}

func TestMultipleUpstreams(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	defer b.Close()
	g := testGateway(t, a.URL, func(c *Config) {
		c.Upstreams["billing"] = UpstreamConfig{URL: b.URL}
		c.Routes = append(c.Routes, RouteConfig{ID: "invoices", Path: "/api/invoices", Upstream: "billing"})
	})
	for path, want := range map[string]string{"/api/contacts": "A", "/api/invoices": "B"} {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req("GET", path))
		if w.Body.String() != want {
			t.Errorf("GET %s = %q, want upstream %s", path, w.Body, want)
		}
	}
}
