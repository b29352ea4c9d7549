package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// startedSource is a started Manager and the pool that verifies its
// certificate.
type startedSource struct {
	name string
	m    *Manager
	pool *x509.CertPool
}

// startedSources starts a Manager for each of the file-based sources. The
// acme source is covered against Pebble in acme_test.go.
func startedSources(t *testing.T) []startedSource {
	t.Helper()
	log, _ := testLogger(t)

	dev := New(devCAConfig(t.TempDir()), log, time.Now)
	startManager(t, dev)
	devPool, err := CertPool(dev.CAFile())
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	mt := newMinter(t, now.Add(-time.Hour))
	cert, key, _ := mt.issue(now)
	certFile, keyFile := plainFiles.init(t, t.TempDir(), cert, key)
	files := New(filesConfig(certFile, keyFile), log, time.Now)
	startManager(t, files)

	return []startedSource{{SourceDevCA, dev, devPool}, {SourceFiles, files, mt.pool}}
}

// The listener speaks TLS 1.3 by default, TLS 1.2 with AEAD suites only,
// and refuses TLS 1.1 and CBC suites, whatever the certificate source.
func TestTLSHandshake(t *testing.T) {
	tests := []struct {
		name      string
		client    *tls.Config // nil: defaults
		wantErr   string      // the server's alert
		wantVer   uint16
		wantSuite uint16
		wantCurve tls.CurveID
	}{
		{name: "default client gets TLS 1.3 with ML-KEM", wantVer: tls.VersionTLS13, wantSuite: tls.TLS_AES_128_GCM_SHA256, wantCurve: tls.X25519MLKEM768},
		{name: "TLS 1.3 without post-quantum", client: &tls.Config{CurvePreferences: []tls.CurveID{tls.CurveP256}}, wantVer: tls.VersionTLS13, wantSuite: tls.TLS_AES_128_GCM_SHA256, wantCurve: tls.CurveP256},
		{name: "TLS 1.2 AES-GCM", client: &tls.Config{MaxVersion: tls.VersionTLS12}, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, wantCurve: tls.X25519},
		{name: "TLS 1.2 ChaCha20-Poly1305", client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, wantVer: tls.VersionTLS12, wantSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, wantCurve: tls.X25519},
		{name: "TLS 1.1 refused", client: &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, wantErr: "remote error: tls: protocol version not supported"},
		{name: "TLS 1.2 CBC suites refused", client: &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		}}, wantErr: "remote error: tls: handshake failure"},
	}
	for _, src := range startedSources(t) {
		ln := listenLoopback(t)
		serveTLS(t, ln, src.m.TLSConfig, nil)
		for _, tc := range tests {
			t.Run(src.name+"/"+tc.name, func(t *testing.T) {
				c := tc.client.Clone()
				if c == nil {
					c = &tls.Config{}
				}
				c.RootCAs, c.ServerName, c.NextProtos = src.pool, "localhost", []string{"h2", "http/1.1"}
				cs, err := handshake(ln.Addr().String(), c)
				if tc.wantErr != "" {
					if !errContains(err, tc.wantErr) {
						t.Fatalf("handshake = %v (%s %s), want %q", err, tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				got := []string{tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID.String(), cs.NegotiatedProtocol}
				want := []string{tls.VersionName(tc.wantVer), tls.CipherSuiteName(tc.wantSuite), tc.wantCurve.String(), "h2"}
				if d := cmp.Diff(got, want); d != "" {
					t.Errorf("connection (-got +want):\n%s", d)
				}
				if len(cs.VerifiedChains) == 0 {
					t.Error("no verified chain")
				}
			})
		}
	}
}

func TestTLSConfig(t *testing.T) {
	acme := func(challenges ...string) Config {
		return Config{Source: SourceACME, ACME: ACMEConfig{Email: "a@b.test", Domains: []string{"b.test"}, Storage: "/nonexistent", Challenges: challenges}}
	}
	tests := []struct {
		name          string
		cfg           Config
		wantProtos    []string
		wantChallenge bool // HTTPChallengeHandler wraps next
	}{
		{name: "devca", cfg: devCAConfig("/nonexistent"), wantProtos: []string{"h2", "http/1.1"}},
		{name: "files", cfg: filesConfig("/c", "/k"), wantProtos: []string{"h2", "http/1.1"}},
		{name: "acme default", cfg: acme(), wantProtos: []string{"h2", "http/1.1", "acme-tls/1"}, wantChallenge: true},
		{name: "acme http-01 only", cfg: acme("http-01"), wantProtos: []string{"h2", "http/1.1"}, wantChallenge: true},
		{name: "acme tls-alpn-01 only", cfg: acme("tls-alpn-01"), wantProtos: []string{"h2", "http/1.1", "acme-tls/1"}},
		{name: "invalid", cfg: Config{Source: "nope"}, wantProtos: []string{"h2", "http/1.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.cfg, nil, nil) // New has no side effects: nothing is created at /nonexistent
			c := m.TLSConfig()
			if d := cmp.Diff(c.NextProtos, tc.wantProtos); d != "" {
				t.Errorf("NextProtos (-got +want):\n%s", d)
			}
			if c.MinVersion != tls.VersionTLS12 || c.GetCertificate == nil || c.GetConfigForClient != nil {
				t.Errorf("TLSConfig() = MinVersion %x, GetCertificate %v, GetConfigForClient %v", c.MinVersion, c.GetCertificate != nil, c.GetConfigForClient != nil)
			}
			if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "b.test"}); err == nil {
				t.Error("GetCertificate before Start succeeded, want an error")
			}
			// Each call returns a copy the caller may change.
			c.NextProtos[0] = "changed"
			if m.TLSConfig().NextProtos[0] != "h2" {
				t.Error("TLSConfig() shares its NextProtos between calls")
			}

			next := &countingHandler{}
			h := m.HTTPChallengeHandler(next)
			if got := h != http.Handler(next); got != tc.wantChallenge {
				t.Errorf("HTTPChallengeHandler wraps next = %t, want %t", got, tc.wantChallenge)
			}
			// Before Start nothing is answered: requests reach next.
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://b.test/.well-known/acme-challenge/abc", nil))
			if next.n != 1 {
				t.Errorf("next called %d times, want 1", next.n)
			}
		})
	}
}

type countingHandler struct{ n int }

func (h *countingHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.n++
	w.WriteHeader(http.StatusNotFound)
}

func TestCAFile(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "devca", cfg: devCAConfig("/srv/tls"), want: "/srv/tls/ca.pem"},
		{name: "files", cfg: filesConfig("/c", "/k"), want: ""},
		{name: "acme", cfg: Config{Source: SourceACME}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := New(tc.cfg, nil, nil).CAFile(); got != tc.want {
				t.Errorf("CAFile() = %q, want %q", got, tc.want)
			}
		})
	}
}
