package auth

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// The session is bound to the fingerprint the gateway reports for the
// sign-in callback; a step-up binds the new session to the client that
// stepped up. A revocation ends the session for every request, expires
// the cookie, and raises the event the security team watches.
func TestBindingAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	first := map[string]string{"ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1", "user_agent": "chrome/130", "ip_prefix": "192.0.2.0/24"}
	e.fingerprint.Store(&first)
	b := e.browser(t)
	e.login(b, "/", "alice")
	rec := e.record(b)
	if !maps.Equal(rec.Fingerprint, first) {
		t.Fatalf("bound at sign-in: %v, want %v", rec.Fingerprint, first)
	}

	// A step-up from another network re-binds.
	moved := maps.Clone(first)
	moved["ip_prefix"] = "198.51.100.0/24"
	e.fingerprint.Store(&moved)
	p := e.signIn(b, b.Get(e.rpURL+"/sensitive"), "alice")
	if w := who(t, p); w.ACR != "mfa" {
		t.Fatalf("after the step-up: %+v", w)
	}
	rec = e.record(b)
	if !maps.Equal(rec.Fingerprint, moved) {
		t.Fatalf("bound after the step-up: %v, want %v", rec.Fingerprint, moved)
	}

	// A hijack: the session ends, the event carries both fingerprints.
	thief := maps.Clone(moved)
	thief["ja4"] = "t12d0211h2_8e6a03d994ba_a92c7c6a82fe"
	w := httptest.NewRecorder()
	e.rp.Revoke(w, scriptRequest(e, b), rec, Revocation{Reason: "another client", Bound: rec.Fingerprint, Current: thief, Changed: []string{"ja4"}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(strings.Join(w.Header().Values("Set-Cookie"), "\n"), e.sessions.CookieName()+"=;") {
		t.Errorf("revoke answered %d, Set-Cookie %q", w.Code, w.Header().Values("Set-Cookie"))
	}
	if e.identified(b) {
		t.Error("the revoked session still identifies")
	}
	ev, ok := e.events.last(EventHijackSuspected)
	if !ok || ev.Severity != SeverityHigh || ev.Subject != "alice" || ev.SessionHash != rec.Hash() || ev.Detail != "another client" ||
		ev.Fingerprint == nil || ev.Fingerprint.Bound["ja4"] == ev.Fingerprint.Current["ja4"] || !slices.Equal(ev.Fingerprint.Changed, []string{"ja4"}) {
		t.Errorf("hijack event = %+v (%v)", ev, ok)
	}
	// Without a sink of its own, the event is an error log line.
	var l logCapture
	logSink{log: slog.New(&l)}.Emit(context.Background(), ev)
	if line := l.lastWith("auth: " + EventHijackSuspected); !strings.Contains(line, "severity=high") ||
		!strings.Contains(line, "bound_fingerprint=map[") || !strings.Contains(line, "t12d0211h2_8e6a03d994ba_a92c7c6a82fe") {
		t.Errorf("hijack log line = %q", line)
	}

	// A revocation for another reason is not a hijack.
	b = e.browser(t)
	e.login(b, "/", "alice")
	rec = e.record(b)
	w = httptest.NewRecorder()
	e.rp.Revoke(w, scriptRequest(e, b), rec, Revocation{Reason: "account locked"})
	if ev, ok := e.events.last(EventSessionRevoked); !ok || ev.Severity != SeverityMedium || ev.Fingerprint != nil {
		t.Errorf("revocation event = %+v (%v)", ev, ok)
	}
	if e.identified(b) {
		t.Error("the revoked session still identifies")
	}
}

// scriptRequest is a script's GET with the browser's session cookie.
func scriptRequest(e *env, b *browser) *http.Request {
	req := httptest.NewRequest(http.MethodGet, e.rpURL+"/", nil)
	req.Header.Set("Accept", "application/json")
	if c := b.cookie(e.sessions.CookieName()); c != nil {
		req.AddCookie(c)
	}
	return req
}
