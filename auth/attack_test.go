package auth

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// authResponse runs a login as user up to the provider's redirect to the
// callback and returns that redirect's URL, not yet visited.
func (e *env) authResponse(b *browser, user string) *url.URL {
	b.t.Helper()
	b.stopAtCallback()
	defer func() { b.Stop = nil }()
	p := e.signIn(b, b.Get(e.rpURL+"/"), user)
	loc := p.Location()
	if p.Status/100 != 3 || loc == nil || loc.Path != DefaultRedirectPath {
		b.t.Fatalf("login as %s ended at %d %s, want a redirect to the callback", user, p.Status, p.URL)
	}
	return loc
}

// pendingState starts a login and returns its state, stopping before the
// provider.
func (e *env) pendingState(b *browser) string {
	b.t.Helper()
	b.stopAtProvider()
	defer func() { b.Stop = nil }()
	return redirectTo(b.t, b.Get(e.rpURL+"/")).Query().Get("state")
}

func (e *env) wantFailure(t *testing.T, p browsertest.Page, status int, reason string) {
	t.Helper()
	if p.Status != status {
		t.Errorf("status %d at %s, want %d", p.Status, p.URL, status)
	}
	if got, _ := e.events.last(EventLoginFailure); got.Reason != reason {
		t.Errorf("failure reason %q, want %q", got.Reason, reason)
	}
}

// Regression (authorization response replay): the callback URL works once.
// A second visit finds no pending login, and even with a copy of the
// pre-login cookie the consumed state is refused.
func TestStateReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	cb := e.authResponse(b, "alice")
	saved := b.loginCookies()
	if len(saved) != 1 {
		t.Fatalf("%d pre-login cookies, want 1", len(saved))
	}
	who(t, b.Get(cb.String()))

	e.wantFailure(t, b.Get(cb.String()), http.StatusBadRequest, ReasonUnknownState)
	b.setCookie(saved[0].Name, saved[0].Value)
	e.wantFailure(t, b.Get(cb.String()), http.StatusBadRequest, ReasonStateReplay)

	// Another browser with the stolen cookie and URL gets nowhere either.
	thief := e.browser(t)
	thief.setCookie(saved[0].Name, saved[0].Value)
	e.wantFailure(t, thief.Get(cb.String()), http.StatusBadRequest, ReasonStateReplay)
	if e.identified(thief) {
		t.Error("the thief has a session")
	}
}

// Regression (login CSRF): an authorization response whose state names no
// pending login of this browser is refused, and nothing is exchanged.
func TestStateMismatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	tests := []struct {
		name   string
		mangle func(q url.Values)
		reason string
	}{
		{"other state", func(q url.Values) { q.Set("state", rand.Text()) }, ReasonUnknownState},
		{"no state", func(q url.Values) { q.Del("state") }, ReasonNoState},
		{"two states", func(q url.Values) { q.Add("state", q.Get("state")) }, ReasonNoState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			cb := e.authResponse(b, "alice")
			q := cb.Query()
			tt.mangle(q)
			cb.RawQuery = q.Encode()
			e.wantFailure(t, b.Get(cb.String()), http.StatusBadRequest, tt.reason)
			if e.identified(b) {
				t.Error("a session was started")
			}
		})
	}
	// A browser without any pending login (a victim lured to an
	// attacker's callback URL) is refused too.
	cb := e.authResponse(e.browser(t), "mallory")
	e.wantFailure(t, e.browser(t).Get(cb.String()), http.StatusBadRequest, ReasonUnknownState)
}

// Regression (authorization code injection): a code from the attacker's
// own login, sent with the victim's pending state, fails at the token
// endpoint because it is bound to the attacker's PKCE challenge.
func TestCodeInjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	code := e.authResponse(e.browser(t), "mallory").Query().Get("code")
	victim := e.browser(t)
	state := e.pendingState(victim)
	cb := e.rpURL + DefaultRedirectPath + "?" + url.Values{"code": {code}, "state": {state}, "iss": {e.issuer}}.Encode()
	e.wantFailure(t, victim.Get(cb), http.StatusBadRequest, ReasonCodeExchange)
	if e.identified(victim) {
		t.Error("the victim is logged in (as the attacker?)")
	}
}

// Regression (ID token substitution): a pre-login cookie whose nonce was
// changed (sealed with the real key, as only the gateway could) makes the
// provider's ID token fail the nonce check; a cookie changed without the
// key does not even open.
func TestPreLoginCookieTampering(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	t.Run("nonce", func(t *testing.T) {
		b := e.browser(t)
		p := b.Get(e.rpURL + "/")
		c := b.loginCookies()[0]
		pl, err := e.rp.openLogin(c.Name, c.Value)
		if err != nil {
			t.Fatal(err)
		}
		pl.Nonce = rand.Text()
		b.setCookie(c.Name, e.rp.sealLogin(c.Name, pl))
		e.wantFailure(t, e.signIn(b, p, "alice"), http.StatusBadRequest, ReasonNonce)
		if e.identified(b) {
			t.Error("session started despite the nonce mismatch")
		}
	})
	t.Run("bit flip", func(t *testing.T) {
		b := e.browser(t)
		p := b.Get(e.rpURL + "/")
		c := b.loginCookies()[0]
		v := []byte(c.Value)
		if i := len(v) / 2; v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		b.setCookie(c.Name, string(v))
		e.wantFailure(t, e.signIn(b, p, "alice"), http.StatusBadRequest, ReasonUnknownState)
	})
	t.Run("moved to another state's name", func(t *testing.T) {
		pl := pendingLogin{State: "a", Nonce: "n", Verifier: "v", Return: "/", Expires: e.clock.Now().Add(e.cfg.LoginTTL).Unix()}
		v := e.rp.sealLogin(e.rp.loginCookieName("a"), pl)
		if _, err := e.rp.openLogin(e.rp.loginCookieName("b"), v); err == nil {
			t.Error("a sealed pre-login cookie opened under another state's name")
		}
	})
}

// Regression (mix-up, RFC 9207): the provider advertises the iss
// parameter, so a response with another issuer, or none, is refused before
// the code is used.
func TestIssuerMixUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	tests := []struct {
		name   string
		mangle func(q url.Values)
		reason string
	}{
		{"other issuer", func(q url.Values) { q.Set("iss", "https://127.0.0.1:1") }, ReasonIssuerMismatch},
		{"issuer with trailing slash", func(q url.Values) { q.Set("iss", e.issuer+"/") }, ReasonIssuerMismatch},
		{"two iss", func(q url.Values) { q.Add("iss", e.issuer) }, ReasonIssuerMismatch},
		{"missing", func(q url.Values) { q.Del("iss") }, ReasonIssuerMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			cb := e.authResponse(b, "alice")
			q := cb.Query()
			tt.mangle(q)
			cb.RawQuery = q.Encode()
			e.wantFailure(t, b.Get(cb.String()), http.StatusBadRequest, tt.reason)
			if e.identified(b) {
				t.Error("a session was started")
			}
		})
	}
}

// An error response from the provider ends the login with a page; only a
// plain OAuth error code reaches the event, never markup.
func TestProviderErrorResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	tests := []struct {
		name   string
		params url.Values
		status int
		reason string
	}{
		{"access_denied", url.Values{"error": {"access_denied"}, "iss": {e.issuer}}, http.StatusForbidden, ReasonProviderError + ":access_denied"},
		{"markup", url.Values{"error": {"<script>alert(1)</script>"}, "iss": {e.issuer}}, http.StatusBadRequest, ReasonProviderError},
		{"error without iss", url.Values{"error": {"login_required"}}, http.StatusBadRequest, ReasonIssuerMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			tt.params.Set("state", e.pendingState(b))
			p := b.Get(e.rpURL + DefaultRedirectPath + "?" + tt.params.Encode())
			e.wantFailure(t, p, tt.status, tt.reason)
			if strings.Contains(p.Body, "<script>") {
				t.Error("the provider's error is echoed")
			}
		})
	}
	if got := e.events.reasons(EventLoginSuccess); len(got) != 0 {
		t.Errorf("login successes %q", got)
	}
	if slices.Contains(e.events.reasons(EventLoginFailure), "") {
		t.Error("a failure without a reason")
	}
}

// Regression (token confusion) with the dev IdP's real tokens: its access
// token is a JWT signed by the same key for the same audience, yet it does
// not pass as the ID token of a login (it has no nonce), and the ID token
// does not pass as an access token.
func TestTokenConfusion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	who(t, e.login(b, "/", "alice"))
	toks := e.record(b).Tokens
	p := e.rp.prov.Load()
	// The session keeps no access token: get one with its refresh token.
	fresh, err := p.oauth.TokenSource(e.rp.clientContext(t.Context()), &oauth2.Token{RefreshToken: toks.RefreshToken}).Token()
	if err != nil || fresh.AccessToken == "" {
		t.Fatalf("refresh grant = %v, %v; want an access token", fresh, err)
	}
	nonce, _ := claimsOf(t, toks.IDToken)["nonce"].(string)
	if _, _, _, err := e.rp.verifyIDToken(t.Context(), p, fresh.AccessToken, idCheck{nonce: nonce}); err == nil {
		t.Error("the access token passed as the login's ID token")
	}
	if _, _, _, err := e.rp.verifyIDToken(t.Context(), p, toks.IDToken, idCheck{nonce: nonce}); err != nil {
		t.Errorf("the real ID token failed: %v", err)
	}
	if err := checkAccessToken(toks.IDToken, "", nil); err == nil {
		t.Error("the ID token passed as an access token")
	}
	if err := checkAccessToken(fresh.AccessToken, toks.IDToken, nil); err != nil {
		t.Errorf("the real access token failed: %v", err)
	}
}

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rawPayload(jwt), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
