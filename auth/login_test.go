package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A browser's full login against the dev IdP over TLS: the session cookie
// is set, no pre-login cookie is left, and Identify maps the session to
// the subject with roles and the authentication.
func TestLoginFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	before := time.Now().Add(-time.Second)
	w := who(t, e.login(b, "/contacts?q=a%20b", "alice"))

	want := whoami{
		Path: "/contacts?q=a%20b", Subject: "alice", Email: "alice@example.com", Roles: []string{"sales", "support"},
		ACR: "pwd", AMR: []string{"pwd"},
	}
	ignore := cmpopts.IgnoreFields(whoami{}, "AuthTime", "SID", "Hash", "CSRF", "TokenSum")
	if d := cmp.Diff(w, want, ignore); d != "" {
		t.Errorf("identified subject (-got +want):\n%s", d)
	}
	if w.AuthTime.Before(before.Truncate(time.Second)) || w.AuthTime.After(time.Now()) {
		t.Errorf("auth_time = %s, want the time of the login", w.AuthTime)
	}
	if w.SID == "" || w.Hash == "" || w.CSRF == "" {
		t.Errorf("sid %q, hash %q, csrf %q: want all set", w.SID, w.Hash, w.CSRF)
	}
	if b.cookie(e.sessions.CookieName()) == nil {
		t.Error("no session cookie")
	}
	if c := b.loginCookies(); len(c) != 0 {
		t.Errorf("%d pre-login cookies left after the callback", len(c))
	}
	ev, ok := e.events.last(EventLoginSuccess)
	if !ok || ev.Subject != "alice" || ev.SessionHash != w.Hash || ev.ClientIP != "127.0.0.1" || ev.Time.IsZero() {
		t.Errorf("login event = %+v, %v", ev, ok)
	}
	rec := e.record(b)
	if rec.Tokens.RefreshToken == "" || rec.Tokens.IDToken == "" || rec.Tokens.Expiry.IsZero() {
		t.Errorf("session tokens incomplete: refresh %t, id %t, expiry %s",
			rec.Tokens.RefreshToken != "", rec.Tokens.IDToken != "", rec.Tokens.Expiry)
	}

	// Step-up: the provider asks only for the second factor, and the new
	// session (with a new id) says so.
	p := b.Get(e.rpURL + "/stepup")
	if p.URL.Path != "/login/otp" {
		t.Fatalf("step-up ended at %s, want the provider's second-factor form", p.URL)
	}
	w2 := who(t, e.signIn(b, p, "alice"))
	if w2.Path != "/after-stepup" || w2.ACR != "mfa" || !slices.Equal(w2.AMR, []string{"pwd", "otp"}) {
		t.Errorf("after step-up: path %q acr %q amr %q, want /after-stepup, mfa, [pwd otp]", w2.Path, w2.ACR, w2.AMR)
	}
	if w2.Hash == w.Hash {
		t.Error("step-up kept the session id")
	}
	if n := len(mustList(t, e)); n != 1 {
		t.Errorf("%d sessions after step-up, want 1 (the old one deleted)", n)
	}
}

func mustList(t *testing.T, e *env) []string {
	t.Helper()
	l, err := e.sessions.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range l {
		out = append(out, s.UserID)
	}
	return out
}

// The authorization request: PKCE S256, state and nonce of at least 128
// bits, and a pre-login cookie that only this host reads over HTTPS.
func TestAuthorizationRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	b.stopAtProvider()
	p := b.Get(e.rpURL + "/x")
	if p.Status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", p.Status)
	}
	if got := p.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	loc := redirectTo(t, p)
	q := loc.Query()
	if "https://"+loc.Host != e.issuer || q.Get("response_type") != "code" || q.Get("client_id") != testClientID ||
		q.Get("redirect_uri") != e.rpURL+DefaultRedirectPath || q.Get("scope") != "openid profile email offline_access" {
		t.Errorf("authorization request %s", loc)
	}
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
		t.Errorf("code_challenge_method %q, code_challenge %q: want S256 and a SHA-256", q.Get("code_challenge_method"), q.Get("code_challenge"))
	}
	if s, n := q.Get("state"), q.Get("nonce"); len(s) < 26 || len(n) < 26 || s == n {
		t.Errorf("state %q, nonce %q: want distinct values of at least 128 bits", s, n)
	}
	cookies := (&http.Response{Header: p.Header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Set-Cookie: %v, want one pre-login cookie", p.Header.Values("Set-Cookie"))
	}
	c := cookies[0]
	if c.Name != e.rp.loginCookieName(q.Get("state")) || !strings.HasPrefix(c.Name, "__Host-crmgate-login-") ||
		!c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" || c.MaxAge != 600 {
		t.Errorf("pre-login cookie %s", c)
	}
	for _, secret := range []string{q.Get("nonce"), q.Get("state")} {
		if strings.Contains(c.Value, secret) {
			t.Error("pre-login cookie shows its contents")
		}
	}
}

// Several tabs may log in at once; past maxPending, the oldest pending
// login is dropped rather than the cookie header growing without bound.
func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	b.stopAtProvider()
	var auth []string
	for _, path := range []string{"/t1", "/t2", "/t3", "/t4", "/t5"} {
		auth = append(auth, redirectTo(t, b.Get(e.rpURL+path)).String())
	}
	if n := len(b.loginCookies()); n != maxPending {
		t.Fatalf("%d pre-login cookies, want %d", n, maxPending)
	}
	b.Stop = nil
	// The newest tab signs in with the form, the others then ride on the
	// provider's single sign-on session.
	if w := who(t, e.signIn(b, b.Get(auth[4]), "alice")); w.Path != "/t5" {
		t.Errorf("tab 5 landed on %q", w.Path)
	}
	if w := who(t, b.Get(auth[1])); w.Path != "/t2" {
		t.Errorf("tab 2 landed on %q", w.Path)
	}
	if p := b.Get(auth[0]); p.Status != http.StatusBadRequest {
		t.Errorf("tab 1 (dropped): status %d, want 400", p.Status)
	}
	if got := e.events.reasons(EventLoginFailure); !slices.Equal(got, []string{ReasonUnknownState}) {
		t.Errorf("failures %q, want [%s]", got, ReasonUnknownState)
	}
}

// Unauthenticated requests: navigations go to login, everything else gets
// 401 with a Bearer challenge and a problem document.
func TestChallenge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	tests := []struct {
		name, method, accept string
		wantStatus           int
	}{
		{"browser navigation", http.MethodGet, "text/html,application/xhtml+xml,*/*;q=0.8", http.StatusSeeOther},
		{"browser HEAD", http.MethodHead, "text/html", http.StatusSeeOther},
		{"API client", http.MethodGet, "application/json", http.StatusUnauthorized},
		{"no Accept", http.MethodGet, "", http.StatusUnauthorized},
		{"html refused", http.MethodGet, "text/html;q=0, application/json", http.StatusUnauthorized},
		{"form post", http.MethodPost, "text/html", http.StatusUnauthorized},
		{"fetch", http.MethodDelete, "*/*", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, e.rpURL+"/contacts/7?x=1", nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			w := httptest.NewRecorder()
			e.rp.Challenge(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("Challenge status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="crmgate"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if got := w.Header().Get("Content-Type"); got != "application/problem+json" {
					t.Errorf("Content-Type = %q", got)
				}
				if !strings.Contains(w.Body.String(), `"status":401`) {
					t.Errorf("body = %s", w.Body)
				}
				return
			}
			// The return path survives the round trip through the cookie.
			res := w.Result()
			c := res.Cookies()[0]
			loc, _ := res.Location()
			state := loc.Query().Get("state")
			pl, err := e.rp.openLogin(c.Name, c.Value)
			if err != nil || pl.Return != "/contacts/7?x=1" {
				t.Errorf("pending login return %q, %v; want /contacts/7?x=1", pl.Return, err)
			}
			if c.Name != e.rp.loginCookieName(state) {
				t.Error("cookie not named after the state")
			}
		})
	}
}

// Regression (session fixation): a session cookie planted in the victim's
// browser is never adopted by the login; the victim gets a fresh id and
// the planted one stops working.
func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	attacker := e.browser(t)
	who(t, e.login(attacker, "/", "mallory"))
	planted := attacker.cookie(e.sessions.CookieName()).Value

	for _, tt := range []struct{ name, value string }{
		{"attacker's live session", planted},
		{"forged value", strings.Repeat("A", len(planted))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			victim := e.browser(t)
			victim.setCookie(e.sessions.CookieName(), tt.value)
			// The victim starts a login (a link, or a step-up) with the
			// planted cookie in the jar.
			w := who(t, e.login(victim, "/login-to?return=/", "alice"))
			if w.Subject != "alice" {
				t.Errorf("victim identified as %q", w.Subject)
			}
			if got := victim.cookie(e.sessions.CookieName()).Value; got == tt.value {
				t.Error("the planted session id was adopted")
			}
		})
	}
	if e.identified(attacker) {
		t.Error("the attacker's planted session still works after the victim's login replaced it")
	}
}

// Regression (open redirect): a return URL that leaves the gateway's
// origin is replaced with "/" at login; a same-origin path survives.
func TestReturnAfterLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	for _, tt := range []struct{ ret, want string }{
		{"/contacts/42?tab=notes", "/contacts/42?tab=notes"},
		{"//evil.example/x", "/"},
		{`/\evil.example`, "/"},
		{"https://evil.example/", "/"},
		{"/%2F%2Fevil.example", "/"},
	} {
		b := e.browser(t)
		p := e.login(b, "/login-to?return="+url.QueryEscape(tt.ret), "alice")
		if "https://"+p.URL.Host != e.rpURL {
			t.Errorf("return %q: browser left the gateway for %s", tt.ret, p.URL)
			continue
		}
		if w := who(t, p); w.Path != tt.want {
			t.Errorf("return %q: landed on %q, want %q", tt.ret, w.Path, tt.want)
		}
	}
}
