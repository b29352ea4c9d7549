package auth

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// apiGet is a request of a script (not a navigation): without a session it
// gets 401 rather than a login redirect.
func (b *browser) apiGet(raw string) browsertest.Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	return b.Do(req)
}

// dueForRefresh moves the RP's clock to within refresh_before of the
// session's access token expiry.
func (e *env) dueForRefresh(b *browser) {
	b.t.Helper()
	exp := e.record(b).Tokens.Expiry
	if exp.IsZero() {
		b.t.Fatal("the session has no token expiry")
	}
	e.clock.Add(exp.Sub(e.clock.Now()) - 30*time.Second)
}

// A session whose access token is about to expire gets new tokens from the
// dev IdP on its next request, once, however many requests find it due at
// the same time: the provider rotates refresh tokens, and presenting the
// old one twice would revoke the whole grant.
func TestRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	first := who(t, e.login(b, "/", "alice"))
	before := e.record(b).Tokens
	e.dueForRefresh(b)

	var wg sync.WaitGroup
	results := make([]whoami, 8)
	for i := range results {
		wg.Go(func() { results[i] = who(t, b.apiGet(e.rpURL+"/")) })
	}
	wg.Wait()
	for i, w := range results {
		if w.Hash != first.Hash || w.TokenSum == first.TokenSum {
			t.Errorf("request %d: session %s tokens %s; want the same session with new tokens", i, w.Hash, w.TokenSum)
		}
	}
	after := e.record(b).Tokens
	if after.RefreshToken == before.RefreshToken || !after.Expiry.After(before.Expiry) || after.IDToken == "" {
		t.Errorf("tokens not renewed: refresh rotated %v, expiry %s -> %s", after.RefreshToken != before.RefreshToken, before.Expiry, after.Expiry)
	}
	if got := e.events.reasons(EventRefreshFailure); len(got) != 0 {
		t.Errorf("refresh failures %q", got)
	}
}

// When the provider refuses the refresh (here: the refresh token was used
// elsewhere first, so the provider revokes the grant), the session ends.
func TestRefreshRejectedEndsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	w := who(t, e.login(b, "/", "alice"))
	rt := e.record(b).Tokens.RefreshToken

	p := e.rp.prov.Load()
	ctx := e.rp.clientContext(context.Background())
	if _, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token(); err != nil {
		t.Fatalf("refresh by the thief: %v", err)
	}
	e.dueForRefresh(b)
	if p := b.apiGet(e.rpURL + "/"); p.Status != http.StatusUnauthorized {
		t.Errorf("after the refused refresh: %d, want 401", p.Status)
	}
	if ev, ok := e.events.last(EventRefreshFailure); !ok || ev.Reason != ReasonRefreshRejected || ev.SessionHash != w.Hash {
		t.Errorf("refresh failure event %+v, %v", ev, ok)
	}
	if n := len(mustList(t, e)); n != 0 {
		t.Errorf("%d sessions left, want 0", n)
	}
}

// While the provider is down, due sessions keep working with their current
// tokens; the refresh is retried once the pause has passed and the
// provider is back.
func TestRefreshWhileProviderDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	first := who(t, e.login(b, "/", "alice"))
	e.dueForRefresh(b)

	e.idpDown.Store(true)
	for range 3 {
		if w := who(t, b.apiGet(e.rpURL+"/")); w.Hash != first.Hash || w.TokenSum != first.TokenSum {
			t.Errorf("during the outage: session %s tokens %s", w.Hash, w.TokenSum)
		}
	}
	if got := e.events.reasons(EventRefreshFailure); len(got) != 1 || got[0] != ReasonRefreshUnavailable {
		t.Errorf("refresh failures %q, want one %s (then paused)", got, ReasonRefreshUnavailable)
	}

	e.idpDown.Store(false)
	e.clock.Add(refreshPause)
	if w := who(t, b.apiGet(e.rpURL+"/")); w.Hash != first.Hash || w.TokenSum == first.TokenSum {
		t.Errorf("after the outage: session %s tokens %s, want new tokens", w.Hash, w.TokenSum)
	}
}

// Regression (ID token substitution at refresh): a refresh response whose
// ID token names another user or another authentication, or that repeats
// its ID token as access token, is refused, and the session ends; a good
// one is taken.
func TestRefreshVerifiesTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true})
	tests := []struct {
		name   string
		edit   func(c map[string]any)
		sameAT bool
		ok     bool
	}{
		{"good", func(c map[string]any) {}, false, true},
		{"other subject", func(c map[string]any) { c["sub"] = "mallory" }, false, false},
		{"other auth_time", func(c map[string]any) { c["auth_time"] = e.clock.Now().Add(-time.Hour).Unix() }, false, false},
		{"other audience", func(c map[string]any) { c["aud"] = "other-client" }, false, false},
		{"ID token as access token", func(c map[string]any) {}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			first := who(t, b.Get(e.rpURL+"/"))
			authTime := e.record(b).AuthTime
			e.stub.set(func(s *stubOP) {
				s.refresh = func(string) (int, map[string]any) {
					c := s.idClaims(nil)
					delete(c, "nonce")
					c["auth_time"] = authTime.Unix()
					tt.edit(c)
					r := tokenResponse(s.sign(c, nil))
					if tt.sameAT {
						r["access_token"] = r["id_token"]
					}
					return http.StatusOK, r
				}
			})
			e.dueForRefresh(b)
			p := b.apiGet(e.rpURL + "/")
			if tt.ok {
				if w := who(t, p); w.Hash != first.Hash || w.TokenSum == first.TokenSum {
					t.Errorf("session %s tokens %s after refresh", w.Hash, w.TokenSum)
				}
				return
			}
			if p.Status != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", p.Status)
			}
			if got, _ := e.events.last(EventRefreshFailure); got.Reason != ReasonRefreshRejected || got.SessionHash != first.Hash {
				t.Errorf("refresh failure %+v, want %s for %s", got, ReasonRefreshRejected, first.Hash)
			}
		})
	}
}
