package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/redact"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// Deps are what the gateway is given rather than creates.
type Deps struct {
	// Log receives JSON-ready structured logs; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics registers the gateway's series; nil registers nothing.
	Metrics prometheus.Registerer
	// Auth identifies browser users and serves login and logout; nil
	// means no browser login, and routes that require a user answer 401.
	Auth Authenticator
	// APIKeys verifies API keys, read from APIKeySources unless a route
	// names its own; nil means no API keys.
	APIKeys       APIKeyVerifier
	APIKeySources []apikey.Source
	// Bearer verifies bearer access tokens; nil means none are accepted.
	Bearer BearerVerifier
	// Limiter enforces cfg.RateLimit; nil means no rate limits.
	Limiter ratelimit.Limiter
	// Policy decides every identified request; nil means no policy
	// stage (routes are decided by configuration alone).
	Policy PolicyEngine
	// Shadow, with Policy, compares every decision with a candidate
	// policy set's without enforcing it; nil means no shadow mode.
	Shadow PolicyShadow
	// DecisionLog, with Policy, records every decision; nil means none.
	DecisionLog DecisionLogger
	// Auditor records an event for every request; nil means none (and
	// decisions that ask for a strict audit write are denied).
	Auditor Auditor
	// Fingerprint, with Auth, binds browser sessions to the client that
	// signed in (session.fingerprint); nil means no binding.
	Fingerprint *fingerprint.Config
}

// Gateway is the request pipeline: intake, client address, routing, IP
// lists, body limits, forwarding and response headers. It is built once
// from a validated Config; nothing on the request path re-reads the config.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	router    *router
	upstreams map[string]*upstream
	trusted   []netip.Prefix
	drop      map[string]bool // normalised header names removed before forwarding
	identity  map[string]bool // normalised identity header names
	cookies   []string        // lower-case gateway cookie prefixes
	security  securityHeaders
	// stripResponse are the canonical names of response headers removed.
	stripResponse []string
	metrics       *metrics
	ridHeader     string

	auth     Authenticator
	apiKeys  APIKeyVerifier
	bearer   BearerVerifier
	creds    []routeCreds // by route index
	limiter  ratelimit.Limiter
	rl       ratelimit.Config // zero without rate limits
	failures *failureLimiter
	policy   PolicyEngine
	shadow   PolicyShadow
	// decisions is the decision log.
	decisions DecisionLogger
	auditor   Auditor
	signer    *assertion.Signer // nil when assertions are off
	// fp binds sessions to clients; nil without binding.
	fp      *fingerprint.Config
	binding *bindingMetrics
	// redactOpts are the settings of every compiled response transform.
	redactOpts redact.Options
	// Canonical names of the upstream identity headers.
	userHeader, rolesHeader, emailHeader, assertionHeader string
}

// New builds the gateway from cfg, which must have passed Validate. It has
// no side effects beyond registering metrics.
func New(cfg Config, d Deps) (*Gateway, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	rt, err := compileRoutes(cfg.Routes)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	g := &Gateway{
		cfg: cfg, log: d.Log, now: d.Now, router: rt, metrics: m,
		trusted:    parsePrefixes(cfg.Server.TrustedProxies),
		drop:       map[string]bool{},
		identity:   map[string]bool{},
		cookies:    []string{strings.ToLower(cfg.Headers.GatewayCookiePrefix)},
		security:   newSecurityHeaders(cfg.Headers.Security),
		ridHeader:  http.CanonicalHeaderKey(cfg.Server.RequestIDHeader),
		auth:       d.Auth,
		redactOpts: cfg.Redact.Options(),
	}
	g.apiKeys, g.bearer, g.policy, g.shadow, g.decisions, g.auditor = d.APIKeys, d.Bearer, d.Policy, d.Shadow, d.DecisionLog, d.Auditor
	if g.binding, err = newBindingMetrics(d.Metrics); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	if d.Fingerprint != nil && d.Auth != nil {
		fp := *d.Fingerprint
		g.fp = &fp
		if fp.TrustedJA4Header != "" {
			// Only the proxy in front of the gateway may tell the CRM.
			g.drop[normName(fp.TrustedJA4Header)] = true
		}
	}
	if g.creds, err = compileCreds(cfg, d); err != nil {
		return nil, err
	}
	if cfg.RateLimit != nil {
		if d.Limiter == nil {
			return nil, errors.New("rate_limit is configured but no limiter was built")
		}
		g.limiter, g.rl = d.Limiter, *cfg.RateLimit
		if t := cfg.RateLimit.FailedCredentials; t != "" {
			g.failures = &failureLimiter{limiter: d.Limiter, tier: t, log: d.Log, until: map[string]time.Time{}, maxKeys: 100_000}
		}
	}
	if cfg.Assertion.Enabled {
		signer, err := assertion.New(cfg.Assertion, d.Now)
		if err != nil {
			return nil, fmt.Errorf("assertion: %w", err)
		}
		g.signer = signer
		g.assertionHeader = http.CanonicalHeaderKey(cfg.Assertion.Header)
		g.drop[normName(cfg.Assertion.Header)] = true
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{cfg.Headers.Upstream.User, &g.userHeader}, {cfg.Headers.Upstream.Roles, &g.rolesHeader}, {cfg.Headers.Upstream.Email, &g.emailHeader}} {
		if p.name != "-" {
			*p.dst = http.CanonicalHeaderKey(p.name)
			g.drop[normName(p.name)] = true
		}
	}
	for _, h := range spoofable {
		g.drop[h] = true
	}
	for _, h := range cfg.Headers.Identity {
		g.drop[normName(h)] = true
		g.identity[normName(h)] = true
	}
	for _, h := range cfg.Headers.Strip {
		g.drop[normName(h)] = true
	}
	g.drop[normName(cfg.Server.RequestIDHeader)] = true
	for _, h := range cfg.Headers.StripResponse {
		g.stripResponse = append(g.stripResponse, http.CanonicalHeaderKey(h))
	}
	g.upstreams = make(map[string]*upstream, len(cfg.Upstreams))
	for name, uc := range cfg.Upstreams {
		u, err := g.newUpstream(name, uc)
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s: %w", name, err)
		}
		g.upstreams[name] = u
	}
	return g, nil
}

// state is everything one request needs from the gateway, allocated once:
// the scope the stages share, the response writer wrapper, and what the
// forwarding stage reads.
type state struct {
	scope scope.Scope
	sw    statusWriter
	fwd   forward
}

// ServeHTTP runs the pipeline for one request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := &state{}
	s := &st.scope
	s.Start = g.now()
	if info := connInfoFrom(r.Context()); info != nil {
		s.TLS = info.tls
	}
	ctx := context.WithValue(scope.With(r.Context(), s), forwardKey{}, &st.fwd)
	r = r.WithContext(ctx)
	sw := &st.sw
	sw.ResponseWriter, sw.s, sw.g, sw.r = w, s, g, r
	g.metrics.inflight.Inc()
	defer g.finish(sw, r, s)

	peer, client := g.clientAddr(r)
	s.ClientIP = client
	st.fwd.peerTrusted = g.isTrusted(peer)
	s.ID = g.requestID(r, peer)
	wh := sw.Header()
	wh[g.ridHeader] = []string{s.ID}
	// Set once here, without copying: gateway errors carry them as they
	// are, and modifyResponse lets an upstream's own CSP, frame and
	// referrer policies replace the defaults.
	g.security.apply(wh)

	if err := g.serve(sw, r, s); err != nil {
		s.Reason = rejectReason(err)
		if err.Outcome == "rejected" || err.Outcome == "no_route" || err.Outcome == "denied" {
			g.metrics.rejected.WithLabelValues(s.Reason).Inc()
		}
		writeError(sw, r, err)
	}
}

// serve runs the stages in order; the first error ends the request and is
// rendered by ServeHTTP. Forwarding renders its own errors, after headers
// may have been streamed.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, s *scope.Scope) *HTTPError {
	if g.auditor != nil {
		if !g.auditor.Accepting() {
			// No audit, no access: what cannot be recorded is not served.
			return &HTTPError{Status: http.StatusServiceUnavailable, Outcome: "audit_unavailable", Reason: "audit",
				Public: "proxy.error.audit_unavailable"}
		}
		// Admitted: its event is recorded whatever the trail's budget
		// says by the time the request ends.
		s.AuditAdmitted = true
	}
	in, err := g.intake(r, s)
	if err != nil {
		return err
	}
	if strings.HasPrefix(s.Path, ReservedPrefix) {
		if g.fp != nil && g.auth.Owns(s.Path) {
			// A sign-in or step-up callback binds the new session to
			// this client.
			f, _ := r.Context().Value(forwardKey{}).(*forward)
			s.Fingerprint = g.clientFingerprint(r, s, f)
		}
		return g.endpoint(w, r, s)
	}
	rt, err := g.route(r, s, in)
	if err != nil {
		return err
	}
	if err := checkIP(rt, s.ClientIP); err != nil {
		return err
	}
	if handled, err := g.identify(w, r, s, rt); handled || err != nil {
		return err
	}
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	if g.policy != nil {
		if handled, err := g.decide(w, r, s, rt, f); handled || err != nil {
			return err
		}
	}
	if err := g.limit(w, r, s, rt, f); err != nil {
		return err
	}
	if err := g.limitBody(w, r, rt, in); err != nil {
		return err
	}
	s.Outcome = "forwarded"
	if r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody {
		// Bodies stream both ways at once (uploads that the CRM answers
		// while reading); without this, Go's HTTP/1 server stops reading
		// the request body once the response has begun.
		_ = http.NewResponseController(w).EnableFullDuplex()
	}
	up := g.upstreams[rt.cfg.Upstream]
	if f != nil {
		f.route, f.up, f.in, f.out = rt, up, in, w.Header()
	}
	if g.signer != nil && f != nil && s.Subject != nil && s.Subject.Kind != scope.KindAnonymous {
		tok, err := g.signer.Sign(s.Subject, assertion.RequestInfo{ID: s.ID, Method: s.Method, Path: s.Path})
		if err != nil {
			return &HTTPError{Status: http.StatusInternalServerError, Outcome: "error", Err: fmt.Errorf("signing the identity assertion: %w", err)}
		}
		f.assertion = tok
	}
	presetCache(w.Header(), rt.cfg.Cache)
	up.proxy.ServeHTTP(w, r)
	return nil
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// requestID accepts the id a trusted proxy sent, else makes a new one.
func (g *Gateway) requestID(r *http.Request, peer netip.Addr) string {
	if g.isTrusted(peer) {
		if v := r.Header.Values(g.ridHeader); len(v) == 1 && requestIDRe.MatchString(v[0]) {
			return v[0]
		}
	}
	return newRequestID()
}

// newRequestID is a random request id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return hex.EncodeToString(b[:])
}

func (g *Gateway) finish(sw *statusWriter, r *http.Request, s *scope.Scope) {
	g.metrics.inflight.Dec()
	status := s.Status
	if status == 0 {
		// The handler wrote nothing: the client went away or the
		// connection was hijacked (WebSocket).
		status = StatusClientClosedRequest
	}
	routeID := "-"
	if s.Route != nil {
		routeID = s.Route.ID
	}
	method := s.Method
	if method == "" {
		method = "OTHER"
	}
	outcome := s.Outcome
	if outcome == "" {
		outcome = "unknown"
	}
	elapsed := g.now().Sub(s.Start)
	g.metrics.requests.WithLabelValues(routeID, method, strconv.Itoa(status), outcome).Inc()
	g.metrics.duration.WithLabelValues(routeID).Observe(elapsed.Seconds())
	path := s.Path
	if path == "" {
		path = truncate(r.RequestURI, 256)
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", s.ID),
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.String("route", routeID),
		slog.Int("status", status),
		slog.Int64("bytes", sw.bytes),
		slog.Duration("duration", elapsed),
		slog.String("client_ip", s.ClientIP.String()),
		slog.String("outcome", outcome),
		slog.String("proto", r.Proto),
		{},
		{},
	}
	n := len(attrs) - 2
	if s.Policy != nil {
		attrs[n] = slog.String("policy_revision", s.Policy.Revision)
		n++
	}
	if rd := s.Redaction; rd != nil {
		values := 0
		for _, r := range rd.Rules {
			values += r.Values
		}
		attrs[n] = slog.Group("redact", slog.String("result", rd.Result), slog.Int("values", values),
			slog.Int("rows_kept", rd.RowsKept), slog.Int("rows_dropped", rd.RowsDropped))
		n++
	}
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
	if g.auditor != nil && !sw.recorded {
		sw.recorded = true
		g.auditor.Request(r.Context(), &AuditRecord{Scope: s, Request: r, Status: status, Bytes: sw.bytes, Duration: elapsed})
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func rejectReason(e *HTTPError) string {
	if e.Reason != "" {
		return e.Reason
	}
	switch e.Status {
	case http.StatusNotFound:
		return "no_route"
	case http.StatusMethodNotAllowed:
		return "method"
	case http.StatusForbidden:
		return "ip_list"
	case http.StatusRequestEntityTooLarge:
		return "body_too_large"
	}
	return "bad_request"
}

// statusWriter records the status and size of the response into the scope.
// It exposes the wrapped writer through Unwrap so http.ResponseController
// (flushes, hijacks for WebSocket) reaches the real connection.
type statusWriter struct {
	http.ResponseWriter
	s     *scope.Scope
	bytes int64
	// g and r are the gateway and the request, for the strict audit
	// write when the response starts.
	g *Gateway
	r *http.Request
	// recorded says the request's audit event is written already;
	// discard that the answer was replaced and the rest is dropped.
	recorded, discard bool
}

func (w *statusWriter) WriteHeader(code int) {
	if code > 101 && code < 200 {
		// An upstream's informational response (103 Early Hints) is
		// relayed, but may not set cookies: the gateway's cookie names are
		// its own, and no 1xx needs any.
		delete(w.Header(), "Set-Cookie")
	}
	if w.discard {
		return
	}
	if code >= 200 && !w.recorded && w.g != nil && w.g.auditor != nil && strict(w.s) && w.auditStarted(code) {
		return
	}
	if w.s.Status == 0 && code >= 200 {
		w.s.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.s.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets streaming responses through without buffering.
func (w *statusWriter) Flush() {
	if w.s.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}
