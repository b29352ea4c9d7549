package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
	"github.com/crmgate/crmgate/redact"
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
// answer: a deny is 403 (503 when an OPA server could not be asked); an allow whose decision needs a stage this
// gateway cannot apply (a strict audit write without an audit trail) is a
// deny too, never silently ignored. A decision's redact and filter entries are compiled
// here for the response transform (stage 9); one that cannot be enforced
// is a deny.
//
// A session action ends the session (revoke) or sends its user through a
// step-up that re-binds it (step_up), whatever the decision's allow; a
// deny that names a step-up is answered by the step-up stage (see
// stepUp). Those write the response themselves: handled is then true.
func (g *Gateway) decide(w http.ResponseWriter, r *http.Request, s *scope.Scope, rt *route, f *forward) (handled bool, herr *HTTPError) {
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
	sessionAction := d.SessionAction == policy.SessionRevoke || d.SessionAction == policy.SessionStepUp
	switch {
	case sessionAction:
		// The session is ended or must be re-bound before anything
		// is forwarded, whatever the decision's allow.
		allow = false
	case !allow:
	case d.Audit != nil && d.Audit.Durability == policy.DurabilityStrict && g.auditor == nil:
		allow, reason = false, "decision needs a strict audit write, and no audit trail is configured"
	}
	var tr *redact.Program
	if allow && (len(d.Redact) > 0 || len(d.Filter) > 0) {
		var err error
		if tr, err = g.transformOf(d, s.Method); err != nil {
			allow, reason = false, err.Error()
		}
	}
	s.Policy = &scope.PolicyOutcome{Revision: d.Revision, Entrypoint: d.Entrypoint, Allow: allow, Reason: reason, SessionAction: d.SessionAction}
	if d.Audit != nil {
		s.Policy.AuditDurability, s.Policy.AuditTags = d.Audit.Durability, d.Audit.Tags
	}
	level := slog.LevelDebug
	if !allow {
		level = slog.LevelInfo
	}
	if d.DecisionID == "" {
		g.log.LogAttrs(r.Context(), level, "policy decision",
			slog.String("request_id", s.ID), slog.String("route", rt.cfg.ID), slog.Bool("allow", allow),
			slog.String("reason", reason), slog.String("revision", d.Revision), slog.String("entrypoint", d.Entrypoint),
			slog.String("error", d.Error))
	} else {
		// An OPA server's id of the decision, to find it in its
		// decision log.
		g.log.LogAttrs(r.Context(), level, "policy decision",
			slog.String("request_id", s.ID), slog.String("route", rt.cfg.ID), slog.Bool("allow", allow),
			slog.String("reason", reason), slog.String("revision", d.Revision), slog.String("entrypoint", d.Entrypoint),
			slog.String("error", d.Error), slog.String("decision_id", d.DecisionID))
	}
	switch {
	case d.SessionAction == policy.SessionRevoke:
		return g.revoke(w, r, s, f, d)
	case d.SessionAction == policy.SessionStepUp:
		return g.stepUp(w, r, s, d, true)
	case !allow && d.StepUp != nil:
		return g.stepUp(w, r, s, d, false)
	}
	// Failed: a policy's own reason may read "policy_unavailable" too.
	if !allow && d.Failed() && d.Reason == policy.ReasonUnavailable {
		// The OPA server could not be asked: nothing is decided about
		// the caller, so the answer says "try again", not "forbidden".
		g.metrics.rejected.WithLabelValues("policy_unavailable").Inc()
		return false, &HTTPError{Status: http.StatusServiceUnavailable, Outcome: "unavailable", Reason: "policy_unavailable",
			Err: fmt.Errorf("policy %s (revision %s): %s: %s", d.Entrypoint, d.Revision, reason, d.Error), Public: "proxy.error.policy_unavailable"}
	}
	if !allow {
		g.metrics.rejected.WithLabelValues("policy").Inc()
		return false, &HTTPError{Status: http.StatusForbidden, Outcome: "denied", Reason: "policy",
			Err: fmt.Errorf("policy %s (revision %s): %s", d.Entrypoint, d.Revision, reason), Public: "proxy.error.forbidden"}
	}
	if f != nil {
		f.upstreamHeaders = d.UpstreamHeaders
		f.transform, f.redactions = tr, d.Redact
		if d.RateLimit != nil {
			f.policyTier = d.RateLimit.Tier
		}
	} else if tr != nil {
		// Nowhere to hand the transform to: never forward unredacted.
		return false, &HTTPError{Status: http.StatusInternalServerError, Outcome: "error", Err: fmt.Errorf("no forwarding state for the response transform")}
	}
	return false, nil
}

// stepUp answers a deny whose decision names a step-up (RFC 9470): the
// request would be allowed after a stronger or fresher authentication.
//
//   - A browser session's user is handed to the authenticator's step-up
//     (a fresh sign-in at the provider, then back).
//   - A bearer token's user gets 401 with WWW-Authenticate: Bearer
//     error="insufficient_user_authentication", acr_values and max_age:
//     the client obtains a new token and repeats the request.
//   - API keys and service clients cannot step up: 403.
//
// A step-up the authentication already satisfies, or to a level that is
// not configured, is a 403 too: the policy and the configured levels
// disagree, and asking again would loop.
//
// With rebind (the decision's session_action step_up, typically for a
// session whose client fingerprint changed), the user signs in again even
// if the session's authentication satisfies the level: the new session is
// bound to the client that stepped up, so the change is not seen again.
// It needs a browser session and the decision's step_up level.
func (g *Gateway) stepUp(w http.ResponseWriter, r *http.Request, s *scope.Scope, d policy.Decision, rebind bool) (bool, *HTTPError) {
	var req stepup.Required
	if d.StepUp != nil {
		req = stepup.Required{ACR: d.StepUp.ACR, MaxAge: time.Duration(d.StepUp.MaxAgeS) * time.Second}
	}
	deny := func(why string) (bool, *HTTPError) {
		g.metrics.rejected.WithLabelValues("step_up").Inc()
		return false, &HTTPError{Status: http.StatusForbidden, Outcome: "denied", Reason: "step_up",
			Err:    fmt.Errorf("policy %s (revision %s) asks for a step-up to %q: %s", d.Entrypoint, d.Revision, req.ACR, why),
			Public: "proxy.error.step_up_unsupported"}
	}
	sub := s.Subject
	if sub == nil {
		return deny("no subject")
	}
	if d.StepUp == nil {
		return deny("session_action step_up without a step_up level")
	}
	if !g.cfg.StepUp.Known(req.ACR) {
		return deny("the level is not one of step_up.acr_levels")
	}
	switch {
	case sub.Kind == scope.KindAPIKey:
		return deny("API keys cannot step up")
	case sub.Kind != scope.KindUser:
		return deny(sub.Kind + " clients cannot step up")
	}
	if rebind {
		if s.Session == nil || g.auth == nil {
			return deny("session_action step_up needs a browser session")
		}
		g.binding.actions.WithLabelValues(policy.SessionStepUp).Inc()
	} else if ok, _ := g.cfg.StepUp.Satisfies(stepup.Authentication{ACR: sub.ACR, AMR: sub.AMR, AuthTime: sub.AuthTime}, req, g.now()); ok {
		return deny("the authentication already satisfies it (the policy and step_up.acr_levels disagree)")
	}
	s.Outcome = "step_up"
	g.metrics.rejected.WithLabelValues("step_up").Inc()
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "step-up required",
		slog.String("request_id", s.ID), slog.String("subject", sub.ID), slog.String("acr", req.ACR),
		slog.Duration("max_age", req.MaxAge), slog.Bool("session", s.Session != nil))
	if s.Session != nil && g.auth != nil {
		g.auth.StepUp(w, r, sub.ID, req)
		return true, nil
	}
	// A bearer token (RFC 9470 §3).
	v := fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values=%q`, req.ACR)
	if req.MaxAge > 0 {
		v += fmt.Sprintf(", max_age=%d", int64(req.MaxAge/time.Second))
	}
	return false, &HTTPError{Status: http.StatusUnauthorized, Outcome: "step_up", Reason: "step_up",
		Header: http.Header{"Www-Authenticate": {v}},
		Err:    fmt.Errorf("bearer token of %q needs acr %q", sub.ID, req.ACR), Public: "proxy.error.step_up_required"}
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
