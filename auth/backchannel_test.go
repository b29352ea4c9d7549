package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// postLogoutToken POSTs a back-channel logout request as the provider
// would and returns the status and Cache-Control.
func (e *env) postBackChannel(t *testing.T, form url.Values) (int, string) {
	t.Helper()
	resp, err := e.rpSrv.Client().PostForm(e.rpURL+DefaultBackChannelLogoutPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Cache-Control")
}

// The dev IdP ends a user's provider session (here: the user signs out at
// the provider directly) and tells the gateway through the back channel:
// the sessions started in that provider session end, other sessions of
// the same user do not, and the same logout token is refused a second
// time.
func TestBackChannelLogoutFromProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	other := e.browser(t)
	w := who(t, e.login(b, "/", "alice"))
	who(t, e.login(other, "/", "alice"))

	if p := b.Get(e.issuer + "/end_session"); p.Status != http.StatusOK {
		t.Fatalf("end_session at the provider: %d at %s", p.Status, p.URL)
	}
	toks := e.receivedLogoutTokens()
	if len(toks) != 1 {
		t.Fatalf("%d logout tokens reached the gateway, want 1", len(toks))
	}
	if e.identified(b) {
		t.Error("the session survived the provider's back-channel logout")
	}
	if !e.identified(other) {
		t.Error("the user's session in another provider session was ended too")
	}
	ev, ok := e.events.last(EventBackChannelLogout)
	if !ok || ev.Subject != "alice" {
		t.Errorf("back-channel event %+v, %v", ev, ok)
	}
	if n := len(mustList(t, e)); n != 1 {
		t.Errorf("%d sessions left, want 1 (session %s revoked)", n, w.Hash)
	}

	// Regression (logout token replay): the same jti is refused.
	status, cc := e.postBackChannel(t, url.Values{"logout_token": {toks[0]}})
	if status != http.StatusBadRequest || cc != "no-store" {
		t.Errorf("replayed logout token: %d, Cache-Control %q; want 400, no-store", status, cc)
	}
	if line := e.logs.lastWith("auth: back-channel logout refused"); !strings.Contains(line, "already used") {
		t.Errorf("logged %q", line)
	}
}

// Every logout token check, each reached on its own with a token signed by
// a key in the stub provider's JWKS unless the case is about the
// signature; a live session survives all of them, then a valid token ends
// it, once.
func TestBackChannelLogoutTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true})
	s := e.stub
	b := e.browser(t)
	login := who(t, b.Get(e.rpURL+"/"))
	idToken := e.record(b).Tokens.IDToken

	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(edit func(c map[string]any)) map[string]any {
		now := e.clock.Now()
		c := map[string]any{
			"iss": s.issuer, "aud": testClientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": rand.Text(), "sub": "alice", "sid": login.SID,
			"events": map[string]any{backChannelEvent: map[string]any{}},
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	logoutTyp := (&jose.SignerOptions{}).WithType("logout+jwt")
	signed := func(edit func(c map[string]any)) string { return s.sign(claims(edit), logoutTyp) }

	tests := []struct {
		name  string
		token string
		why   string
	}{
		{"nonce", signed(func(c map[string]any) { c["nonce"] = "n" }), "nonce"},
		{"no events", signed(func(c map[string]any) { delete(c, "events") }), "backchannel-logout event"},
		{"another event only", signed(func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}), "backchannel-logout event"},
		{"event not an object", signed(func(c map[string]any) { c["events"] = map[string]any{backChannelEvent: "yes"} }), "not an object"},
		{"wrong audience", signed(func(c map[string]any) { c["aud"] = "other-client" }), "audience"},
		{"wrong issuer", signed(func(c map[string]any) { c["iss"] = "https://evil.example" }), "different provider"},
		{"neither sub nor sid", signed(func(c map[string]any) { delete(c, "sub"); delete(c, "sid") }), "'sub' claim, a 'sid' claim"},
		{"no jti", signed(func(c map[string]any) { delete(c, "jti") }), "jti"},
		{"no exp", signed(func(c map[string]any) { delete(c, "exp") }), "exp"},
		{"expired", signed(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-time.Minute).Unix() }), "expired"},
		{"no iat", signed(func(c map[string]any) { delete(c, "iat") }), "iat missing"},
		{"iat too old", signed(func(c map[string]any) { c["iat"] = e.clock.Now().Add(-10 * time.Minute).Unix() }), "iat too old"},
		{"iat in the future", signed(func(c map[string]any) { c["iat"] = e.clock.Now().Add(10 * time.Minute).Unix() }), "iat in the future"},
		{"forged: key not in JWKS", signJWT(t, jose.RS256, &jose.JSONWebKey{Key: rogue, KeyID: s.kid}, claims(nil), logoutTyp), "failed to verify signature"},
		{"alg none", unsignedJWT(t, claims(nil)), "unexpected signature algorithm"},
		{"HS256 with the public key", signJWT(t, jose.HS256, pubDER, claims(nil), nil), "unexpected signature algorithm"},
		{"typ at+jwt", s.sign(claims(nil), (&jose.SignerOptions{}).WithType("at+jwt")), `typ "at+jwt"`},
		{"the session's ID token", idToken, "backchannel-logout event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, cc := e.postBackChannel(t, url.Values{"logout_token": {tt.token}})
			if status != http.StatusBadRequest || cc != "no-store" {
				t.Errorf("status %d, Cache-Control %q; want 400, no-store", status, cc)
			}
			if line := e.logs.lastWith("auth: back-channel logout refused"); !strings.Contains(line, tt.why) {
				t.Errorf("logged %q, want it to say %q", line, tt.why)
			}
		})
	}
	for _, tt := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{}},
		{"two tokens", url.Values{"logout_token": {signed(nil), signed(nil)}}},
	} {
		if status, _ := e.postBackChannel(t, tt.form); status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tt.name, status)
		}
	}
	resp, err := e.rpSrv.Client().Get(e.rpURL + DefaultBackChannelLogoutPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET status %d, want 405", resp.StatusCode)
	}
	if !e.identified(b) {
		t.Fatal("a refused logout token ended the session")
	}

	valid := signed(nil)
	if status, cc := e.postBackChannel(t, url.Values{"logout_token": {valid}}); status != http.StatusOK || cc != "no-store" {
		t.Fatalf("valid logout token: %d, Cache-Control %q; want 200, no-store", status, cc)
	}
	if e.identified(b) {
		t.Error("the session survived a valid logout token")
	}
	if status, _ := e.postBackChannel(t, url.Values{"logout_token": {valid}}); status != http.StatusBadRequest {
		t.Errorf("replayed logout token: %d, want 400", status)
	}
}

// Which sessions a logout token ends: those of its sid when this process
// indexed it; the user's when it names a sub this process cannot match to
// a sid; none for an unknown sid without sub.
func TestBackChannelLogoutScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true})
	s := e.stub
	loginAs := func(sub, sid string) *browser {
		s.set(func(s *stubOP) {
			s.mint = func(auth url.Values) map[string]any {
				c := s.idClaims(auth)
				c["sub"], c["sid"] = sub, sid
				return tokenResponse(s.sign(c, nil))
			}
		})
		b := e.browser(t)
		who(t, b.Get(e.rpURL+"/"))
		return b
	}
	a1 := loginAs("alice", "sid-1")
	a2 := loginAs("alice", "sid-2")
	bob := loginAs("bob", "sid-3")
	carol := loginAs("carol", "sid-4")
	logout := func(sub, sid string) {
		t.Helper()
		c := map[string]any{"iss": s.issuer, "aud": testClientID, "iat": e.clock.Now().Unix(), "exp": e.clock.Now().Add(time.Minute).Unix(),
			"jti": rand.Text(), "events": map[string]any{backChannelEvent: map[string]any{}}}
		if sub != "" {
			c["sub"] = sub
		}
		if sid != "" {
			c["sid"] = sid
		}
		if status, _ := e.postBackChannel(t, url.Values{"logout_token": {s.sign(c, nil)}}); status != http.StatusOK {
			t.Fatalf("logout sub=%q sid=%q: status %d", sub, sid, status)
		}
	}
	alive := func() [4]bool {
		return [4]bool{e.identified(a1), e.identified(a2), e.identified(bob), e.identified(carol)}
	}

	logout("alice", "sid-1")
	if got := alive(); got != [4]bool{false, true, true, true} {
		t.Errorf("after sid-1: alive %v", got)
	}
	logout("bob", "sid-unknown")
	if got := alive(); got != [4]bool{false, true, false, true} {
		t.Errorf("after bob with an unknown sid: alive %v", got)
	}
	logout("", "sid-unknown-2")
	if got := alive(); got != [4]bool{false, true, false, true} {
		t.Errorf("after an unknown sid alone: alive %v", got)
	}
	logout("alice", "")
	if got := alive(); got != [4]bool{false, false, false, true} {
		t.Errorf("after alice's sub: alive %v", got)
	}
}
