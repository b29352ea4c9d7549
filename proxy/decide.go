package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
	"github.com/crmgate/crmgate/scope"
)

// PolicyEngine decides routes (policy.Engine).
type PolicyEngine interface {
	Input(s *scope.Scope, r *http.Request) *policy.Input
	Decide(ctx context.Context, in *policy.Input, entrypoint string) policy.Decision
}

// PolicyShadow compares the active set's decisions with a candidate
// set's, off the request path (policy.Shadow).
type PolicyShadow interface {
	Compare(in *policy.Input, entrypoint string, active policy.Decision)
}

// DecisionLogger records decisions with their input (decisionlog.Logger);
// it must not block.
type DecisionLogger interface {
	Log(e decisionlog.Entry)
}

// decide asks the policy about the request (stages 6-7) and enforces the
// answer: a deny is 403; an allow whose decision needs a stage this
// gateway does not run yet (response redaction or row filtering, a strict
// audit write, a session action) is a deny too, never silently ignored.
func (g *Gateway) decide(r *http.Request, s *scope.Scope, rt *route, f *forward) *HTTPError {
	in := g.policy.Input(s, r)
	d := g.policy.Decide(r.Context(), in, rt.cfg.Policy)
	if g.shadow != nil {
		g.shadow.Compare(in, rt.cfg.Policy, d)
	}
	if g.decisions != nil {
		g.decisions.Log(decisionlog.Entry{Input: in, Decision: d, RequestID: s.ID})
	}
	reason := d.Reason
	allow := d.Allow
	switch {
	case !allow:
	case len(d.Redact) > 0 || len(d.Filter) > 0:
		allow, reason = false, "decision needs response redaction or filtering, which this gateway does not apply yet"
	case d.Audit != nil && d.Audit.Durability == "strict":
		allow, reason = false, "decision needs a strict audit write, which this gateway does not make yet"
	case d.SessionAction != "" && d.SessionAction != "none":
		allow, reason = false, fmt.Sprintf("decision needs session action %q, which this gateway does not take yet", d.SessionAction)
	}
	s.Policy = &scope.PolicyOutcome{Revision: d.Revision, Entrypoint: d.Entrypoint, Allow: allow, Reason: reason}
	level := slog.LevelDebug
	if !allow {
		level = slog.LevelInfo
	}
	g.log.LogAttrs(r.Context(), level, "policy decision",
		slog.String("request_id", s.ID), slog.String("route", rt.cfg.ID), slog.Bool("allow", allow),
		slog.String("reason", reason), slog.String("revision", d.Revision), slog.String("entrypoint", d.Entrypoint),
		slog.String("error", d.Error))
	if !allow {
		g.metrics.rejected.WithLabelValues("policy").Inc()
		return &HTTPError{Status: http.StatusForbidden, Outcome: "denied", Reason: "policy",
			Err: fmt.Errorf("policy %s (revision %s): %s", d.Entrypoint, d.Revision, reason), Public: "You are not allowed to do this."}
	}
	if f != nil {
		f.upstreamHeaders = d.UpstreamHeaders
		if d.RateLimit != nil {
			f.policyTier = d.RateLimit.Tier
		}
	}
	return nil
}

// setPolicyHeaders adds the decision's upstream headers, after client
// copies of them are removed.
func setPolicyHeaders(h http.Header, f *forward) {
	for name, v := range f.upstreamHeaders {
		for k := range h {
			if normName(k) == normName(name) {
				delete(h, k)
			}
		}
		h[http.CanonicalHeaderKey(name)] = []string{v}
	}
}
