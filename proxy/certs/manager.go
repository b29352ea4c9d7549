package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// errNotStarted is what handshakes get before Start has loaded a
// certificate.
var errNotStarted = errors.New("certs: no certificate loaded (Manager not started)")

// source is one place certificates come from.
type source interface {
	start(ctx context.Context) error
	certificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	close() error
}

var (
	_ source = (*devCA)(nil)
	_ source = (*filesSource)(nil)
	_ source = (*acmeSource)(nil)
)

// Manager serves certificates for the gateway's TLS listener from the
// source its Config selects. Its methods are safe for concurrent use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	src   source // nil when cfg.Source is not valid; Start reports why
	state state

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
}

// New returns a Manager for cfg, with Defaults applied to its own copy. It
// has no side effects: nothing is read, written or started before Start. A
// nil log discards; a nil now is time.Now. The clock dates the development
// CA's certificates and the expiry warnings; certmagic keeps its own.
func New(cfg Config, log *slog.Logger, now func() time.Time) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg.Defaults()
	m := &Manager{cfg: cfg, log: log}
	switch cfg.Source {
	case SourceDevCA:
		m.src = &devCA{cfg: cfg.DevCA, log: log, now: now, state: &m.state}
	case SourceFiles:
		m.src = &filesSource{cfg: cfg.Files, log: log, now: now, state: &m.state, debounce: filesDebounce}
	case SourceACME:
		m.src = &acmeSource{cfg: cfg.ACME, log: log, state: &m.state}
	}
	return m
}

// Start validates the configuration, loads or creates the certificate
// files and starts the background work of the source (file watching, ACME
// issuance and renewal) until ctx ends or Close is called. For acme it
// returns before a certificate is obtained; see Status. Start may be
// called once.
//
// With acme, bind the gateway's listeners before calling Start (TLSConfig
// and HTTPChallengeHandler may be taken before it): certmagic answers a
// challenge on its own temporary listener when nothing listens on the
// challenge port yet, and that listener would make the gateway's own bind
// fail with "address already in use".
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return errors.New("certs: Start called twice or after Close")
	}
	if err := m.cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	if err := m.src.start(ctx); err != nil {
		cancel()
		_ = m.src.close()
		return err
	}
	m.started, m.cancel = true, cancel
	return nil
}

// Close stops the background work. Certificates already handed to
// connections stay valid; later handshakes keep getting the last
// certificate for files and devca. Close may be called more than once.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started || m.closed {
		m.closed = true
		return nil
	}
	m.closed = true
	m.cancel()
	return m.src.close()
}

// TLSConfig returns a new base configuration for the gateway's TLS
// listener, with GetCertificate wired to the source. The caller may change
// the copy it gets, including GetConfigForClient, which the Manager does
// not use.
func (m *Manager) TLSConfig() *tls.Config {
	c := baseTLSConfig()
	c.GetCertificate = m.getCertificate
	if a, ok := m.src.(*acmeSource); ok && a.tlsALPN01() {
		c.NextProtos = append(c.NextProtos, acmeTLS1)
	}
	return c
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.src == nil {
		return nil, errNotStarted
	}
	return m.src.certificate(hello)
}

// HTTPChallengeHandler wraps next, the handler of the plain-HTTP listener,
// so that ACME HTTP-01 challenge requests are answered and everything else
// reaches next. It returns next itself when the source is not acme or
// HTTP-01 is off.
func (m *Manager) HTTPChallengeHandler(next http.Handler) http.Handler {
	a, ok := m.src.(*acmeSource)
	if !ok || !a.http01() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.handleHTTPChallenge(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// CAFile returns the path of the development CA's certificate (PEM), which
// clients of a devca gateway must trust; "" for the other sources.
func (m *Manager) CAFile() string {
	if m.cfg.Source != SourceDevCA {
		return ""
	}
	return filepath.Join(m.cfg.DevCA.Dir, devCACertFile)
}

// Status returns what the Manager serves now.
func (m *Manager) Status() Status { return m.state.get() }

// Changed returns a channel that is closed at the next change of Status:
// a certificate installed or a failure recorded. Take the channel before
// causing the change, then read Status after it closes.
func (m *Manager) Changed() <-chan struct{} { return m.state.changed() }
