package auth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/auth/stepup"
)

// A browser whose session has a password only is sent to the provider
// for mfa with prompt=login and max_age; it comes back to the page, with
// a new session id that records the new acr, amr and auth_time.
func TestStepUpBrowser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	if w := who(t, e.login(b, "/", "alice")); w.ACR != "pwd" {
		t.Fatalf("first sign-in acr = %q, want pwd", w.ACR)
	}
	before := e.record(b).Hash()

	b.stopAtProvider()
	p := b.Get(e.rpURL + "/sensitive?tab=1")
	q := redirectTo(t, p).Query()
	if q.Get("acr_values") != "mfa" || q.Get("prompt") != "login" || q.Get("max_age") != "300" {
		t.Fatalf("authorization request %v, want acr_values=mfa prompt=login max_age=300", q)
	}
	b.Stop = nil
	p = e.signIn(b, b.Get(redirectTo(t, p).String()), "alice")
	w := who(t, p)
	if w.Path != "/sensitive?tab=1" || w.ACR != "mfa" || !strings.Contains(strings.Join(w.AMR, ","), "otp") {
		t.Fatalf("after the step-up: %+v", w)
	}
	if after := e.record(b).Hash(); after == before {
		t.Error("the session id was not rotated")
	}
	if e.identifiedHash(before) {
		t.Error("the session before the step-up still works")
	}
	if _, ok := e.events.last(EventStepUpRequest); !ok {
		t.Error("no step-up request event")
	}
	if ev, ok := e.events.last(EventStepUpSuccess); !ok || ev.Subject != "alice" {
		t.Errorf("step-up success event = %+v %v", ev, ok)
	}
	// Fresh enough now: no further step-up.
	if w := who(t, b.Get(e.rpURL+"/sensitive")); w.ACR != "mfa" {
		t.Errorf("second visit: %+v", w)
	}
}

// identifiedHash reports whether a session with this storage key exists.
func (e *env) identifiedHash(hash string) bool {
	list, err := e.sessions.List(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, s := range list {
		if s.Hash == hash {
			return true
		}
	}
	return false
}

// A step-up that ends as another user, or weaker than asked, fails: the
// user sees why, the session stays as it was, and it is an event.
func TestStepUpRefused(t *testing.T) {
	t.Parallel()
	levels := stepup.Config{Levels: []string{"pwd", "mfa", "phr"}}
	levels.Defaults()
	e := newEnv(t, envOpts{levels: &levels})
	for _, tt := range []struct {
		name, path, as, reason string
	}{
		{"another user", "/sensitive", "bob", ReasonStepUpSubject},
		// The provider cannot give phishing-resistant authentication:
		// its best, mfa, is below the level asked for.
		{"too weak", "/sensitive?acr=phr", "alice", ReasonStepUpWeak},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser(t)
			e.login(b, "/", "alice")
			before := e.record(b).Hash()
			p := e.signIn(b, b.Get(e.rpURL+tt.path), tt.as)
			if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "additional verification did not succeed") {
				t.Fatalf("%d at %s:\n%s", p.Status, p.URL, p.Body)
			}
			if tt.as == "alice" {
				if got := e.record(b); got.Hash() != before || got.UserID != "alice" || got.ACR != "pwd" {
					t.Errorf("session changed: %s %s %s", got.Hash(), got.UserID, got.ACR)
				}
			} else {
				// Signing in as bob ended alice's session at the
				// provider, which told the gateway (back-channel
				// logout): what matters is that the browser is not
				// bob's now.
				t.Logf("logout tokens received: %d", len(e.receivedLogoutTokens()))
				if e.identified(b) && e.record(b).UserID != "alice" {
					t.Errorf("the browser is signed in as %s", e.record(b).UserID)
				}
			}
			if ev, ok := e.events.last(EventStepUpFailure); !ok || ev.Reason != tt.reason {
				t.Errorf("failure event = %+v, want reason %s", ev, tt.reason)
			}
			if e.actions.Load() != 0 {
				t.Error("the sensitive action was carried out")
			}
		})
	}
}

// A script gets 401 with where to step up; opening that link in the
// browser steps up and, for an unsafe method, comes back to a page that
// asks the user to repeat the action: nothing is replayed.
func TestStepUpScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	e.login(b, "/", "alice")
	req, _ := http.NewRequest(http.MethodDelete, e.rpURL+"/sensitive", strings.NewReader(`{"id": 9}`))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Referer", e.rpURL+"/contacts?page=2")
	p := b.Do(req)
	var prob struct {
		Status    int    `json:"status"`
		ACR       string `json:"acr_values"`
		MaxAge    int64  `json:"max_age"`
		StepUpURL string `json:"step_up_url"`
	}
	if p.Status != http.StatusUnauthorized || json.Unmarshal([]byte(p.Body), &prob) != nil || prob.ACR != "mfa" || prob.MaxAge != 300 {
		t.Fatalf("%d %s", p.Status, p.Body)
	}
	link, err := url.Parse(prob.StepUpURL)
	if err != nil || link.IsAbs() || !strings.HasPrefix(link.Path, DefaultStepUpPath) {
		t.Fatalf("step_up_url %q is not a same-origin path under %s", prob.StepUpURL, DefaultStepUpPath)
	}
	p = e.signIn(b, b.Get(e.rpURL+prob.StepUpURL), "alice")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Verification complete") || !strings.Contains(p.Body, `href="/contacts?page=2"`) {
		t.Fatalf("after the step-up: %d at %s\n%s", p.Status, p.URL, p.Body)
	}
	if e.actions.Load() != 0 {
		t.Error("the DELETE was replayed")
	}
	if e.record(b).ACR != "mfa" {
		t.Error("the session does not record the step-up")
	}
}

// The step-up link refuses what it does not know and never leads away
// from the gateway.
func TestStepUpLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	e.login(b, "/", "alice")
	for _, q := range []string{"acr=gold", "acr=mfa&acr=pwd", "acr=mfa&max_age=-1", "acr=mfa&max_age=99999999999", "acr=mfa&max_age=x", ""} {
		if p := b.Get(e.rpURL + DefaultStepUpPath + "?" + q); p.Status != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, p.Status)
		}
	}
	p := e.signIn(b, b.Get(e.rpURL+DefaultStepUpPath+"?acr=mfa&return="+url.QueryEscape("https://evil.example/")), "alice")
	if "https://"+p.URL.Host != e.rpURL || p.URL.Path != "/" {
		t.Errorf("landed on %s, want the gateway's /", p.URL)
	}
	// The done page links only to same-origin paths.
	p = b.Get(e.rpURL + DefaultStepUpPath + "/done?back=" + url.QueryEscape("//evil.example/x"))
	if strings.Contains(p.Body, "evil.example") {
		t.Errorf("done page links away: %s", p.Body)
	}
}
