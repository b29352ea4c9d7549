// Package admin owns the gateway's admin listener: liveness (/healthz),
// readiness (/readyz), Prometheus metrics (/metrics), the session and API
// key endpoints and the security dashboard (/dashboard). It binds to
// loopback by default because what it serves is for operators, not clients.
//
// It does not decide readiness itself: the components that can be unready
// (certificates, policies, stores) register checks with it.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Config is the admin listener's configuration.
type Config struct {
	Listen string `yaml:"listen" jsonschema_description:"Address of the admin listener (health, readiness, metrics). Default 127.0.0.1:9090. Keep it off public networks."`
	// Token, when set, is required as a bearer token for everything but
	// /healthz and /readyz (which load balancers and probes call) and the
	// /dashboard page itself, which holds no data until given the token.
	// Pprof serves Go's profiler under /debug/pprof/ (behind Token).
	Pprof bool       `yaml:"pprof" jsonschema_description:"Serve Go's runtime profiler under /debug/pprof/ (requires the token when one is set). Default false."`
	Token secret.Ref `yaml:"token" jsonschema_description:"Secret reference (env:NAME or file:/path) to a bearer token required for /metrics and admin operations. Empty: no token (loopback only)."`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9090"
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fielderr.New("listen", "%q is not host:port (e.g. 127.0.0.1:9090)", c.Listen)
	}
	return nil
}

// Check is a readiness check: nil when ready.
type Check func(context.Context) error

// Server is the admin listener.
type Server struct {
	cfg    Config
	log    *slog.Logger
	gather prometheus.Gatherer
	mu     sync.Mutex
	checks map[string]Check
	// sessions serves the session endpoints; nil without browser sign-in.
	sessions Sessions
	// apiKeys serves the API key endpoints; nil without api_keys.
	apiKeys APIKeys
	// events receives admin actions for the audit trail; nil: log only.
	events func(context.Context, Event)
	// feed serves the dashboard's events panel; nil: no audit trail.
	feed EventFeed
	// policy reports the policy stage's state; nil: no policy.
	policy func() PolicyStatus
	srv    *http.Server
	ln     net.Listener
}

// New prepares the admin server; nothing listens before Listen.
func New(cfg Config, log *slog.Logger, gather prometheus.Gatherer) *Server {
	s := &Server{cfg: cfg, log: log, gather: gather, checks: map[string]Check{}}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// AddCheck registers a readiness check under name.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Handler serves the admin endpoints. Paths and methods match exactly.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.authorize(promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})))
	mux.Handle("GET /sessions", s.requireToken(http.HandlerFunc(s.listSessions)))
	mux.Handle("DELETE /sessions/{hash}", s.requireToken(http.HandlerFunc(s.deleteSession)))
	mux.Handle("POST /sessions/revoke", s.requireToken(http.HandlerFunc(s.revokeSessions)))
	s.apiKeyRoutes(mux)
	s.dashboardRoutes(mux)
	if s.cfg.Pprof {
		mux.Handle("GET /debug/pprof/", s.authorize(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", s.authorize(http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/trace", s.authorize(http.HandlerFunc(pprof.Trace)))
		mux.Handle("GET /debug/pprof/symbol", s.authorize(http.HandlerFunc(pprof.Symbol)))
	}
	return mux
}

// authorize requires the admin token, when one is configured, as
// "Authorization: Bearer <token>", compared in constant time.
func (s *Server) authorize(next http.Handler) http.Handler {
	want := s.cfg.Token.Value()
	if len(want) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(r.Header.Values("Authorization")) != 1 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmgate-admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	result := map[string]string{}
	ready := true
	for name, c := range checks {
		if err := c(ctx); err != nil {
			ready = false
			result[name] = err.Error()
			continue
		}
		result[name] = "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": result})
}

// UseListener makes Listen use ln instead of binding admin.listen (the
// demo binds its ports before writing the configuration).
func (s *Server) UseListener(ln net.Listener) { s.ln = ln }

// Listen binds the admin listener.
func (s *Server) Listen() error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Close releases the listener of a server that will not serve.
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}
