package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// testCert returns a self-signed certificate for localhost and a pool
// trusting it.
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

type runningServer struct {
	srv    *Server
	pool   *x509.CertPool
	cancel context.CancelFunc
	done   chan error
}

func startServer(t *testing.T, upstreamURL string, mod func(*Config)) *runningServer {
	t.Helper()
	return startServerWith(t, upstreamURL, mod, Deps{})
}

// startServerWith is startServer with the gateway's dependencies.
func startServerWith(t testing.TB, upstreamURL string, mod func(*Config), d Deps) *runningServer {
	t.Helper()
	g := testGatewayWith(t, upstreamURL, func(c *Config) {
		c.Listen.HTTPS = "127.0.0.1:0"
		c.Listen.HTTP = "127.0.0.1:0"
		c.Server.ShutdownTimeout = 5 * time.Second
		if mod != nil {
			mod(c)
		}
	}, d)
	cert, pool := testCert(t)
	srv := g.NewServer(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{srv: srv, pool: pool, cancel: cancel, done: make(chan error, 1)}
	go func() { rs.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rs.done:
		case <-time.After(10 * time.Second):
			t.Error("server did not shut down")
		}
	})
	return rs
}

func (rs *runningServer) client(h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rs.pool}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (rs *runningServer) url(path string) string {
	return "https://localhost:" + portOf(rs.srv.Addr()) + path
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func TestServerProtocols(t *testing.T) {
	var sawTLS atomic.Pointer[scope.TLSInfo]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	rs := startServer(t, up.URL, nil)
	// Observe the scope the pipeline built, through the gateway's handler.
	inner := rs.srv.handler
	rs.srv.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := connInfoFrom(r.Context()); info != nil {
			sawTLS.Store(info.tls)
		}
		inner.ServeHTTP(w, r)
	})
	rs.srv.h1.Handler = rs.srv.handler

	for _, tt := range []struct {
		name  string
		h2    bool
		proto string
	}{{"http/1.1", false, "HTTP/1.1"}, {"h2", true, "HTTP/2.0"}} {
		t.Run(tt.name, func(t *testing.T) {
			sawTLS.Store(nil)
			res, err := rs.client(tt.h2).Get(rs.url("/api/contacts"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Proto != tt.proto || string(body) != `{"ok":true}` {
				t.Fatalf("GET = %d %s %q, want 200 %s", res.StatusCode, res.Proto, body, tt.proto)
			}
			info := sawTLS.Load()
			if info == nil || info.Hello == nil || len(info.Hello.CipherSuites) == 0 || info.ServerName != "localhost" {
				t.Errorf("connection info = %+v, want the captured ClientHello", info)
			}
		})
	}
}

func TestServerRefusesOldTLS(t *testing.T) {
	rs := startServer(t, "http://127.0.0.1:1", nil)
	_, err := tls.Dial("tcp", rs.srv.Addr().String(), &tls.Config{RootCAs: rs.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err == nil {
		t.Error("TLS 1.1 handshake succeeded, want refusal")
	}
}

func TestServerRedirectListener(t *testing.T) {
	rs := startServer(t, "http://127.0.0.1:1", nil)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + rs.srv.HTTPAddr().String()
	tests := []struct {
		name, method, path, host string
		status                   int
		location                 string
	}{
		{"get", "GET", "/api/contacts?x=1", "crm.example.com", 308, "https://crm.example.com:" + portOf(rs.srv.Addr()) + "/api/contacts?x=1"},
		{"post refused", "POST", "/api/contacts", "crm.example.com", 400, ""},
		{"bad host", "GET", "/", "evil.example/x", 400, ""},
		{"bad path", "GET", "/a/%2e%2e/b", "crm.example.com", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			req.Host = tt.host
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status || res.Header.Get("Location") != tt.location {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, res.StatusCode, res.Header.Get("Location"), tt.status, tt.location)
			}
		})
	}
}

func TestServerHandshakeTimeout(t *testing.T) {
	rs := startServer(t, "http://127.0.0.1:1", func(c *Config) { c.Server.HandshakeTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", rs.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Send nothing: a slowloris on the handshake is cut off.
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	_, err = conn.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 2*time.Second || strings.Contains(err.Error(), "timeout") {
		t.Errorf("idle handshake: read returned %v after %s, want the server to close within ~200ms", err, time.Since(start))
	}
}

// A request in flight when shutdown begins is answered, on HTTP/1.1 and
// HTTP/2, before the server stops.
func TestServerGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	for _, h2 := range []bool{false, true} {
		rs := startServer(t, up.URL, nil)
		got := make(chan string, 1)
		go func() {
			res, err := rs.client(h2).Get(rs.url("/api/contacts"))
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			got <- string(b)
		}()
		time.Sleep(200 * time.Millisecond)
		rs.cancel()
		time.Sleep(100 * time.Millisecond)
		release <- struct{}{}
		if s := <-got; s != "done" {
			t.Errorf("h2=%v: in-flight request got %q, want it answered", h2, s)
		}
		select {
		case <-rs.done:
		case <-time.After(5 * time.Second):
			t.Errorf("h2=%v: server did not stop after the request finished", h2)
		}
		rs.done <- nil // for the cleanup
	}
}
