package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// stepUpPolicy reads and lists freely, deletes only with a second factor
// used within 5 minutes, asks for a step-up on every method of /redirect,
// asks for a level no configuration knows on /api/names, and asks for mfa
// on /api/office whatever the caller has (a policy that disagrees with
// the configured levels).
const stepUpPolicy = `package crmgate.authz

default decision := {"allow": false, "reason": "no rule allows this request"}

mfa_fresh if {
	"otp" in input.subject.amr
	time.parse_rfc3339_ns(input.request.time) / 1000000000 - input.subject.auth_time <= 300
}

decision := {"allow": true} if {
	input.request.method in {"GET", "HEAD", "POST", "PUT"}
	not input.route.id in {"redirect", "intl", "office", "ws"}
}

decision := {"allow": true} if {
	input.request.method == "DELETE"
	mfa_fresh
}

decision := {"allow": false, "reason": "deletes need a recent second factor", "step_up": {"acr": "mfa", "max_age_s": 300}} if {
	input.request.method == "DELETE"
	not mfa_fresh
}

decision := {"allow": false, "reason": "always", "step_up": {"acr": "mfa", "max_age_s": 300}} if {
	input.request.method != "DELETE"
	input.route.id in {"redirect", "ws"}
}

decision := {"allow": false, "reason": "gold", "step_up": {"acr": "gold"}} if {
	input.request.method != "DELETE"
	input.route.id == "intl"
}

decision := {"allow": false, "reason": "disagrees", "step_up": {"acr": "mfa"}} if {
	input.request.method != "DELETE"
	input.route.id == "office"
}
`

func TestStepUpStage(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, stepUpPolicy)
	pwdUser := &scope.Subject{Kind: scope.KindUser, ID: "carol", Roles: []string{"admin"}, ACR: "pwd", AMR: []string{"pwd"}, AuthTime: time.Now().Add(-time.Hour)}
	mfaUser := &scope.Subject{Kind: scope.KindUser, ID: "carol", Roles: []string{"admin"}, ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: time.Now().Add(-time.Minute)}
	staleUser := &scope.Subject{Kind: scope.KindUser, ID: "carol", Roles: []string{"admin"}, ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: time.Now().Add(-6 * time.Minute)}

	t.Run("browser sessions are sent to step up on every channel", func(t *testing.T) {
		for _, sub := range []*scope.Subject{pwdUser, staleUser} {
			fa := &fakeAuth{sub: sub}
			g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa, Policy: eng})
			for _, r := range []*http.Request{
				req("DELETE", "/api/contacts/7", "Accept", "text/html"),
				req("DELETE", "/api/contacts/7", "Accept", "application/json"),
				// A method override to DELETE is a DELETE.
				req("POST", "/api/legacy/7", "X-HTTP-Method-Override", "DELETE"),
				// HEAD is decided as the resource it reads.
				req("HEAD", "/redirect"),
				req("GET", "/redirect"),
				// A WebSocket upgrade is decided as its GET.
				req("GET", "/ws", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
			} {
				before := fa.steppedUp.Load()
				w, e := do(g, r)
				if fa.steppedUp.Load() != before+1 || w.Code != http.StatusSeeOther || e.Path != "" {
					t.Errorf("%s %s (auth %s): %d, step-ups %d, forwarded %q", r.Method, r.URL.Path, sub.AuthTime, w.Code, fa.steppedUp.Load()-before, e.Path)
				}
			}
		}
	})

	t.Run("a fresh second factor passes", func(t *testing.T) {
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: mfaUser}, Policy: eng})
		if w, e := do(g, req("DELETE", "/api/contacts/7")); w.Code != 200 || e.Method != "DELETE" {
			t.Errorf("DELETE with mfa: %d %q", w.Code, e.Method)
		}
	})

	t.Run("no step-up that cannot help", func(t *testing.T) {
		for name, tc := range map[string]struct {
			sub    *scope.Subject
			target string
		}{
			"a level that is not configured":       {pwdUser, "/api/names/x"},
			"a step-up the session satisfies":      {mfaUser, "/api/office"},
			"a step-up for a service client":       {&scope.Subject{Kind: scope.KindService, ID: "sync"}, "/redirect"},
			"a step-up for a subject with no kind": {&scope.Subject{ID: "x"}, "/redirect"},
		} {
			fa := &fakeAuth{sub: tc.sub}
			g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa, Policy: eng})
			w, e := do(g, req("GET", tc.target))
			if w.Code != http.StatusForbidden || e.Path != "" || fa.steppedUp.Load() != 0 {
				t.Errorf("%s: %d, forwarded %q, step-ups %d", name, w.Code, e.Path, fa.steppedUp.Load())
			}
		}
	})

	t.Run("bearer tokens get the RFC 9470 challenge; API keys cannot step up", func(t *testing.T) {
		m, key := keyFixture(t)
		d, mod := apiDeps(t, m, bigTiers)
		d.Policy = eng
		g := testGatewayWith(t, up.URL, mod, d)
		w, e := do(g, req("DELETE", "/api/contacts/7", "Authorization", "Bearer user-pwd"))
		want := `Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="mfa", max_age=300`
		if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != want || e.Path != "" {
			t.Errorf("bearer user with a password: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if w, _ := do(g, req("DELETE", "/api/contacts/7", "Authorization", "Bearer user-mfa")); w.Code != 200 {
			t.Errorf("bearer user with mfa: %d", w.Code)
		}
		w, e = do(g, req("DELETE", "/api/contacts/7", "X-API-Key", key))
		if w.Code != http.StatusForbidden || e.Path != "" || w.Header().Get("WWW-Authenticate") != "" || !strings.Contains(w.Body.String(), "cannot give") {
			t.Errorf("API key: %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	})
}
