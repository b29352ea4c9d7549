package proxy

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// Session binding (stage 5): a browser session is bound at sign-in to the
// fingerprint of the client that signed in (TLS JA4, browser family and
// major version, client network; package session/fingerprint), and every
// request of the session is compared with it. The comparison goes to the
// policy as input.session.fingerprint; the policy decides what a change
// means, and its session_action (revoke, step_up) is carried out here.

// bindingMetrics count fingerprint checks and the session actions taken.
type bindingMetrics struct {
	checks  *prometheus.CounterVec
	actions *prometheus.CounterVec
}

func newBindingMetrics(reg prometheus.Registerer) (*bindingMetrics, error) {
	m := &bindingMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_session_fingerprint_checks_total",
			Help: "Session requests whose client fingerprint was compared with the one bound at sign-in, by result (match, changed, unbound).",
		}, []string{"result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_session_actions_total",
			Help: "Session actions a policy decision asked for and the gateway took, by action (revoke, step_up).",
		}, []string{"action"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.checks, m.actions} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// clientFingerprint is the fingerprint of the request's client: the JA4 of
// its connection, computed once at handshake, or, when a TLS-terminating
// proxy in front of the gateway reports it, the configured header's value,
// believed only from a trusted proxy. Without either, ja4 is absent.
func (g *Gateway) clientFingerprint(r *http.Request, s *scope.Scope, f *forward) fingerprint.Fingerprint {
	cfg := *g.fp
	var ja4 string
	switch {
	case cfg.TrustedJA4Header != "" && !f.peerTrusted:
		// A client that reaches the gateway directly may send any value:
		// the component is absent, which a bound session sees as changed.
		cfg.TrustedJA4Header = ""
	case cfg.TrustedJA4Header == "" && s.TLS != nil:
		ja4 = s.TLS.JA4
	}
	return fingerprint.ComputeWithJA4(cfg, ja4, r, s.ClientIP)
}

// bind compares the fingerprint of a request of session rec with the one
// bound at sign-in and records the outcome in the scope, for the policy.
func (g *Gateway) bind(r *http.Request, s *scope.Scope, f *forward, rec *session.Record) {
	if g.fp == nil {
		return
	}
	now := g.clientFingerprint(r, s, f)
	s.Fingerprint = now
	f.session = rec
	bound := fingerprint.Fingerprint(rec.Fingerprint)
	if len(bound) == 0 {
		// Signed in before binding was configured, or the sign-in request
		// carried no component at all: nothing to compare.
		g.binding.checks.WithLabelValues("unbound").Inc()
		return
	}
	match, changed := g.fp.Compare(bound, now)
	s.Session.Fingerprint = scope.FingerprintCheck{
		Bound: true, Match: match, Changed: changed,
		BoundUserAgent: bound[fingerprint.ComponentUserAgent], UserAgent: now[fingerprint.ComponentUserAgent],
	}
	if match {
		g.binding.checks.WithLabelValues("match").Inc()
		return
	}
	g.binding.checks.WithLabelValues("changed").Inc()
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "session fingerprint changed",
		slog.String("request_id", s.ID), slog.String("subject", s.Subject.ID), slog.String("id_hash", rec.Hash()),
		slog.Any("changed", changed))
}

// revoke carries out a decision's session_action revoke: the session ends
// on every replica and the request is answered as one without a session.
// A request without a session has nothing to revoke and is refused.
func (g *Gateway) revoke(w http.ResponseWriter, r *http.Request, s *scope.Scope, f *forward, d policy.Decision) (bool, *HTTPError) {
	if f == nil || f.session == nil || s.Session == nil {
		g.metrics.rejected.WithLabelValues("policy").Inc()
		return false, &HTTPError{Status: http.StatusForbidden, Outcome: "denied", Reason: "policy",
			Public: "proxy.error.forbidden"}
	}
	g.binding.actions.WithLabelValues(policy.SessionRevoke).Inc()
	g.metrics.rejected.WithLabelValues("session_revoked").Inc()
	s.Outcome = "session_revoked"
	fp := s.Session.Fingerprint
	v := auth.Revocation{Reason: d.Reason}
	if fp.Bound && !fp.Match {
		v.Bound, v.Current, v.Changed = f.session.Fingerprint, s.Fingerprint, fp.Changed
	}
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "session revoked by policy",
		slog.String("request_id", s.ID), slog.String("subject", s.Subject.ID), slog.String("id_hash", f.session.Hash()),
		slog.String("reason", d.Reason), slog.Any("changed", fp.Changed))
	g.auth.Revoke(w, r, f.session, v)
	return true, nil
}
