package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed time tests start at.
var t0 = time.Date(2030, time.March, 1, 12, 0, 0, 0, time.UTC)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

// logBuffer collects a test's log. Background goroutines (certmagic, the
// file watcher) may still log after the test returns, which t.Log does not
// allow, so the log goes to a buffer that is printed when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	b := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// startManager starts m and closes it at the end of the test.
func startManager(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Start(t.Context()); err != nil {
		t.Fatalf("Start() = %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
}

// serveTLS accepts TLS connections on a loopback port with the
// configuration that conf returns for each connection, completes the
// handshake and then holds the connection until the client closes it.
// onHandshake, if not nil, sees each completed handshake.
func serveTLS(t *testing.T, ln net.Listener, conf func() *tls.Config, onHandshake func(tls.ConnectionState)) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := tls.Server(c, conf())
				_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				if onHandshake != nil {
					onHandshake(tc.ConnectionState())
				}
				_, _ = io.Copy(io.Discard, tc)
			})
		}
	})
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// handshake dials addr with the client configuration c and returns the
// connection state.
func handshake(addr string, c *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// waitStatus waits until cond holds for m's Status.
func waitStatus(ctx context.Context, t *testing.T, m *Manager, what string, cond func(Status) bool) Status {
	t.Helper()
	for {
		ch := m.Changed()
		st := m.Status()
		if cond(st) {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; status %+v", what, ctx.Err(), st)
		}
	}
}

// minter issues test certificates from a throwaway development CA.
type minter struct {
	t    *testing.T
	d    *devCA
	ca   *x509.Certificate
	key  crypto.Signer
	pool *x509.CertPool
}

func newMinter(t *testing.T, now time.Time) *minter {
	t.Helper()
	d := &devCA{cfg: DevCAConfig{Dir: t.TempDir(), Hosts: []string{"localhost", "127.0.0.1"}}, log: slog.New(slog.DiscardHandler), now: clock(now), state: &state{}}
	ca, key, err := d.createCA("test")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &minter{t: t, d: d, ca: ca, key: key, pool: pool}
}

// issue returns the PEM certificate and key of a new leaf valid from now.
func (mt *minter) issue(now time.Time) (certPEM, keyPEM []byte, leaf *x509.Certificate) {
	mt.t.Helper()
	mt.d.now = clock(now)
	c, err := mt.d.issueLeaf(mt.ca, mt.key)
	if err != nil {
		mt.t.Fatal(err)
	}
	certPEM, err = os.ReadFile(filepath.Join(mt.d.cfg.Dir, devLeafCertFile))
	if err != nil {
		mt.t.Fatal(err)
	}
	keyPEM, err = os.ReadFile(filepath.Join(mt.d.cfg.Dir, devLeafKeyFile))
	if err != nil {
		mt.t.Fatal(err)
	}
	return certPEM, keyPEM, c.Leaf
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// errContains reports whether err's message contains want; "" wants nil.
func errContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
