package proxy

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session"
)

// Authenticator is the browser-login side of identification (stage 4):
// the OIDC relying party (auth.RP) in production.
type Authenticator interface {
	// Identify returns the user of the request's session. Any error means
	// the request has no usable session; errors wrapping
	// session.ErrUnavailable mean the store could not be asked.
	Identify(r *http.Request) (*scope.Subject, *session.Record, error)
	// Challenge answers a request that needs a user and has none: a login
	// redirect for browsers, 401 for other clients.
	Challenge(w http.ResponseWriter, r *http.Request)
	// StepUp answers a request of the signed-in user subject that needs
	// a stronger or fresher authentication (req) than the session shows:
	// a step-up sign-in for browsers, 401 with where to start one for
	// scripts.
	StepUp(w http.ResponseWriter, r *http.Request, subject string, req stepup.Required)
	// Revoke ends the request's session rec on every replica because the
	// policy said so (session_action revoke), raises the security event
	// v describes, and answers as for a request without a session.
	Revoke(w http.ResponseWriter, r *http.Request, rec *session.Record, v auth.Revocation)
	// Handler serves the login callback and logout endpoints.
	Handler() http.Handler
	// Owns reports whether path is one of Handler's endpoints.
	Owns(path string) bool
}

// maxEndpointBody bounds what the gateway's own endpoints read: logout
// forms and back-channel logout tokens are small.
const maxEndpointBody = 64 << 10

// jwksPath is where the assertion's verification keys are published.
const jwksPath = ReservedPrefix + "jwks.json"

// endpoint serves the gateway's own paths under ReservedPrefix. They are
// not routes: no route may claim the prefix, and nothing under it is ever
// forwarded.
func (g *Gateway) endpoint(w http.ResponseWriter, r *http.Request, s *scope.Scope) *HTTPError {
	s.Outcome = "gateway"
	r.Body = http.MaxBytesReader(w, r.Body, maxEndpointBody)
	switch {
	case s.Path == jwksPath && g.signer != nil:
		g.signer.Handler().ServeHTTP(w, r)
	case g.auth != nil && g.auth.Owns(s.Path):
		g.auth.Handler().ServeHTTP(w, r)
	default:
		s.Outcome = "no_route"
		return &HTTPError{Status: http.StatusNotFound, Outcome: "no_route", Public: "proxy.error.not_found"}
	}
	return nil
}

// identify establishes who is calling (stage 4) as the route requires.
// It returns handled when it has answered the request itself (a login
// challenge), and an error to fail closed.
func (g *Gateway) identify(w http.ResponseWriter, r *http.Request, s *scope.Scope, rt *route) (handled bool, herr *HTTPError) {
	mode := rt.cfg.Auth
	if mode == AuthNone {
		s.Subject = anonymous
		return false, nil
	}
	rc := &g.creds[rt.index]
	sub, herr := g.explicitCredential(r, s, rc)
	if herr != nil {
		return false, herr
	}
	if sub != nil {
		if e := forwardable(sub); e != nil {
			return false, g.unforwardable(r, s, sub, e)
		}
		s.Subject = sub
		return false, nil
	}
	if rc.session {
		sub, rec, err := g.auth.Identify(r)
		switch {
		case err == nil:
			if e := forwardable(sub); e != nil {
				return false, g.unforwardable(r, s, sub, e)
			}
			s.Subject = sub
			s.Session = &scope.Session{ID: rec.Hash(), Created: rec.Created, LastSeen: rec.LastSeen}
			if f, _ := r.Context().Value(forwardKey{}).(*forward); f != nil {
				g.bind(r, s, f, rec)
			}
			return false, nil
		case errors.Is(err, session.ErrUnavailable):
			g.log.LogAttrs(r.Context(), slog.LevelError, "session store unavailable; request refused",
				slog.String("request_id", s.ID), slog.Any("err", err))
			return false, &HTTPError{Status: http.StatusServiceUnavailable, Outcome: "unavailable", Err: err,
				Public: "proxy.error.sign_in_unavailable"}
		}
	}
	if mode == AuthOptional {
		s.Subject = anonymous
		return false, nil
	}
	s.Outcome = "unauthenticated"
	g.metrics.rejected.WithLabelValues("unauthenticated").Inc()
	if rc.session && !rc.apiKey && !rc.bearer {
		// Browser-only routes: a login redirect for browsers, 401 for
		// other clients.
		g.auth.Challenge(w, r)
		return true, nil
	}
	if rc.session && wantsHTML(r) {
		g.auth.Challenge(w, r)
		return true, nil
	}
	return false, &HTTPError{Status: http.StatusUnauthorized, Outcome: "unauthenticated",
		Public: "proxy.error.auth_required", Header: http.Header{"Www-Authenticate": challenges(rc)}}
}

func (g *Gateway) unforwardable(r *http.Request, s *scope.Scope, sub *scope.Subject, e error) *HTTPError {
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "identity cannot be sent upstream",
		slog.String("request_id", s.ID), slog.String("subject", truncate(sub.ID, 64)), slog.String("problem", e.Error()))
	return &HTTPError{Status: http.StatusForbidden, Outcome: "denied", Reason: "identity_unforwardable", Err: e,
		Public: "proxy.error.identity_unpassable"}
}

// anonymous is the subject of callers without credentials. It is shared
// and must not be modified.
var anonymous = &scope.Subject{Kind: scope.KindAnonymous}

// errUnforwardable says why a subject cannot be sent in headers.
type errUnforwardable string

func (e errUnforwardable) Error() string { return string(e) }

// forwardable checks that the subject's id, e-mail and roles can travel in
// header values exactly as they are: visible ASCII and spaces only, and no
// comma inside a role (roles are comma-separated). Anything else would be
// changed on the way or be ambiguous to the CRM, so the request fails
// closed instead.
func forwardable(sub *scope.Subject) error {
	if sub.ID == "" || !headerSafe(sub.ID) {
		return errUnforwardable("subject id is empty or not printable ASCII")
	}
	if !headerSafe(sub.Email) {
		return errUnforwardable("e-mail is not printable ASCII")
	}
	for _, role := range sub.Roles {
		if role == "" || !headerSafe(role) || strings.ContainsRune(role, ',') || strings.TrimSpace(role) != role {
			return errUnforwardable("a role is empty, not printable ASCII, has a comma or surrounding spaces")
		}
	}
	return nil
}

func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// setIdentity adds the identity headers for s's subject to h, after every
// client copy has been removed.
func (g *Gateway) setIdentity(h http.Header, s *scope.Scope, f *forward) {
	sub := s.Subject
	if sub == nil || sub.Kind == scope.KindAnonymous {
		return
	}
	u := g.cfg.Headers.Upstream
	if u.User != "-" {
		h[g.userHeader] = []string{sub.ID}
	}
	if u.Roles != "-" && len(sub.Roles) > 0 {
		h[g.rolesHeader] = []string{strings.Join(sub.Roles, ",")}
	}
	if u.Email != "-" && sub.Email != "" {
		h[g.emailHeader] = []string{sub.Email}
	}
	if f.assertion != "" {
		h[g.assertionHeader] = []string{f.assertion}
	}
}
