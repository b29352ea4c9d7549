package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/internal/pebbletest"
)

// challengeListeners are the test's stand-ins for the gateway's plain-HTTP
// and HTTPS listeners: they serve the Manager that is active now with its
// HTTPChallengeHandler and TLSConfig, exactly as package proxy does, and
// count the challenges they answered.
type challengeListeners struct {
	active            atomic.Pointer[Manager]
	httpPort, tlsPort int
	tlsAddr           string
	httpAnswers       atomic.Int64 // HTTP-01 requests answered 200
	alpnAnswers       atomic.Int64 // handshakes that negotiated acme-tls/1
}

func newChallengeListeners(t *testing.T) *challengeListeners {
	t.Helper()
	l := &challengeListeners{}
	httpLn, tlsLn := listenLoopback(t), listenLoopback(t)
	l.httpPort, l.tlsPort = httpLn.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port
	l.tlsAddr = tlsLn.Addr().String()

	srv := &http.Server{Handler: http.HandlerFunc(l.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	httpLns := []net.Listener{httpLn}
	tlsLns := []net.Listener{tlsLn}
	// Pebble dials the first address localhost resolves to; where that is
	// ::1, answer there too.
	if ln, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", l.httpPort)); err == nil {
		httpLns = append(httpLns, ln)
	}
	if ln, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", l.tlsPort)); err == nil {
		tlsLns = append(tlsLns, ln)
	}
	for _, ln := range httpLns {
		wg.Go(func() { _ = srv.Serve(ln) })
	}
	for _, ln := range tlsLns {
		serveTLS(t, ln, func() *tls.Config { return l.active.Load().TLSConfig() }, func(cs tls.ConnectionState) {
			if cs.NegotiatedProtocol == acmeTLS1 {
				l.alpnAnswers.Add(1)
			}
		})
	}
	return l
}

func (l *challengeListeners) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	l.active.Load().HTTPChallengeHandler(http.NotFoundHandler()).ServeHTTP(rec, r)
	if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && rec.status == http.StatusOK {
		l.httpAnswers.Add(1)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// TestACMEPebble obtains a certificate for localhost from Pebble, a real
// ACME server, once per challenge type. Validation is real: Pebble
// connects to the test's listeners, which answer through the Manager's
// HTTPChallengeHandler (HTTP-01) and TLSConfig (TLS-ALPN-01); the test
// counts those answers. It then checks that a handshake presents the
// certificate and that it chains to Pebble's issuing root.
func TestACMEPebble(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	log, _ := testLogger(t)
	l := newChallengeListeners(t)
	p := pebbletest.Start(ctx, t, l.httpPort, l.tlsPort)

	tests := []struct {
		challenge                 string
		wantHTTP01, wantTLSALPN01 bool
	}{
		{challenge: ChallengeHTTP01, wantHTTP01: true},
		{challenge: ChallengeTLSALPN01, wantTLSALPN01: true},
	}
	for _, tc := range tests {
		t.Run(tc.challenge, func(t *testing.T) {
			l.httpAnswers.Store(0)
			l.alpnAnswers.Store(0)
			m := New(Config{Source: SourceACME, ACME: ACMEConfig{
				Email:            "ops@crmgate.test",
				Domains:          []string{"localhost"},
				DirectoryURL:     p.DirectoryURL,
				TrustedRootsFile: p.TrustedRootsFile,
				Storage:          t.TempDir(),
				Challenges:       []string{tc.challenge},
				// The listeners cannot be on 80 and 443 in a test; these
				// ports are where Pebble was told to validate.
				AltHTTPPort:    l.httpPort,
				AltTLSALPNPort: l.tlsPort,
			}}, log, nil)
			l.active.Store(m)
			startManager(t, m)

			st := waitStatus(ctx, t, m, "a certificate", func(st Status) bool { return st.Serial > 0 || st.Err != nil })
			if st.Err != nil {
				t.Fatalf("obtaining a certificate: %v", st.Err)
			}

			answered := []bool{l.httpAnswers.Load() > 0, l.alpnAnswers.Load() > 0}
			if d := cmp.Diff(answered, []bool{tc.wantHTTP01, tc.wantTLSALPN01}); d != "" {
				t.Errorf("challenges answered [http-01 tls-alpn-01] (-got +want):\n%s", d)
			}

			cs, err := handshake(l.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: p.Roots, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatalf("handshake with Pebble's root trusted: %v", err)
			}
			leaf := cs.PeerCertificates[0]
			if d := cmp.Diff(leaf.DNSNames, []string{"localhost"}); d != "" {
				t.Errorf("leaf DNS names (-got +want):\n%s", d)
			}
			chain := cs.VerifiedChains[0]
			if root := chain[len(chain)-1]; !root.Equal(p.Root) {
				t.Errorf("chain ends at %q, want Pebble's root %q", root.Subject, p.Root.Subject)
			}
			// Trusting only the CA of Pebble's own HTTPS listener is not
			// enough: the certificate really comes from the ACME CA.
			other, err := CertPool(p.TrustedRootsFile)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: other}); err == nil {
				t.Error("leaf verifies against Pebble's HTTPS CA; want only its ACME root")
			}
		})
	}
}
