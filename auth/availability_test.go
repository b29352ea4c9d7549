package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The provider is down when the gateway starts: Start still succeeds, new
// logins get a clear 503 page, and once the provider is back the retry
// loop discovers it and logins work.
func TestProviderDownAtStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{idpDown: true})
	if e.rp.Ready() {
		t.Fatal("Ready with the provider down")
	}
	b := e.browser(t)
	b.stopAtProvider()
	p := b.Get(e.rpURL + "/")
	if p.Status != http.StatusServiceUnavailable || p.Header.Get("Retry-After") == "" ||
		!strings.Contains(p.Body, "temporarily unavailable") || p.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("login while down: %d, Retry-After %q:\n%s", p.Status, p.Header.Get("Retry-After"), p.Body)
	}
	if got, _ := e.events.last(EventLoginFailure); got.Reason != ReasonIdPUnavailable {
		t.Errorf("failure reason %q, want %s", got.Reason, ReasonIdPUnavailable)
	}
	if p := b.Get(e.rpURL + DefaultRedirectPath + "?state=x&code=y"); p.Status != http.StatusServiceUnavailable {
		t.Errorf("callback while down: %d, want 503", p.Status)
	}
	if status, _ := e.postBackChannel(t, nil); status != http.StatusBadRequest {
		t.Errorf("back-channel logout while down: %d, want 400", status)
	}

	e.idpDown.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for !e.rp.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("the provider was not rediscovered within 10s")
		}
		b.Get(e.rpURL + "/") // a login attempt brings the retry forward
		time.Sleep(10 * time.Millisecond)
	}
	b.Stop = nil
	if w := who(t, e.login(b, "/", "alice")); w.Subject != "alice" {
		t.Errorf("identified as %q after recovery", w.Subject)
	}
}

// Sessions do not need the provider: a gateway started while the provider
// is down still identifies the sessions it has.
func TestSessionsWithoutProvider(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	who(t, e.login(b, "/", "alice"))

	e.idpDown.Store(true)
	rp := New(e.cfg, e.sessions, e.idpSrv.Client(), nil, e.clock.Now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if rp.Ready() {
		t.Fatal("Ready with the provider down")
	}
	req := httptest.NewRequest(http.MethodGet, e.rpURL+"/", nil)
	req.AddCookie(b.cookie(e.sessions.CookieName()))
	sub, _, err := rp.Identify(req)
	if err != nil || sub.ID != "alice" {
		t.Errorf("Identify with the provider down = %v, %v; want alice", sub, err)
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	t.Parallel()
	rp := New(Config{}, nil, nil, nil, nil)
	if err := rp.Start(context.Background()); err == nil {
		t.Error("Start with an empty config succeeded")
	}
	w := httptest.NewRecorder()
	rp.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.crmgate/callback", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("handler of a broken RP: %d, want 503", w.Code)
	}
	w = httptest.NewRecorder()
	rp.Login(w, httptest.NewRequest(http.MethodGet, "/", nil), "/")
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("Login of a broken RP: %d, want 503", w.Code)
	}
}
