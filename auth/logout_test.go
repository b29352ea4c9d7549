package auth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// Regression (logout CSRF): only a same-origin POST carrying the
// session's own CSRF token logs out; a GET shows a form and nothing else.
// The accepted logout ends the session and the provider's (RP-Initiated
// Logout with id_token_hint), and lands on the post-logout URL.
func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	w := who(t, e.login(b, "/", "alice"))
	otherCSRF := who(t, e.login(e.browser(t), "/", "bob")).CSRF
	logoutURL := e.rpURL + DefaultLogoutPath

	refusals := []struct {
		name   string
		form   url.Values
		header http.Header
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{CSRFField: {"AAAA"}}, nil},
		{"another session's token", url.Values{CSRFField: {otherCSRF}}, nil},
		{"cross-site, with the token", url.Values{CSRFField: {w.CSRF}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"same-site subdomain, with the token", url.Values{CSRFField: {w.CSRF}}, http.Header{"Sec-Fetch-Site": {"same-site"}}},
		{"foreign Origin, with the token", url.Values{CSRFField: {w.CSRF}}, http.Header{"Origin": {"https://evil.example"}}},
		{"opaque Origin, with the token", url.Values{CSRFField: {w.CSRF}}, http.Header{"Origin": {"null"}}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			p := b.Post(logoutURL, tt.form, tt.header)
			if p.Status != http.StatusForbidden {
				t.Errorf("status %d at %s, want 403", p.Status, p.URL)
			}
			if !e.identified(b) {
				t.Fatal("the session ended")
			}
		})
	}
	if got := e.events.reasons(EventLogout); len(got) != 0 {
		t.Errorf("logout events %q after refused logouts", got)
	}

	// GET shows the confirmation form with the session's token.
	p := b.Get(logoutURL)
	action, fields := browsertest.ParseForm(t, p)
	if p.Status != http.StatusOK || action != logoutURL || fields.Get(CSRFField) != w.CSRF {
		t.Fatalf("logout page: %d, form to %s with csrf %q", p.Status, action, fields.Get(CSRFField))
	}
	if !e.identified(b) {
		t.Fatal("GET logged out")
	}

	// The redirect to the provider carries what RP-Initiated Logout needs.
	b.stopAtProvider()
	p = b.Post(logoutURL, fields, http.Header{"Origin": {e.rpURL}, "Sec-Fetch-Site": {"same-origin"}})
	b.Stop = nil
	loc := redirectTo(t, p)
	q := loc.Query()
	if p.Status != http.StatusSeeOther || "https://"+loc.Host != e.issuer || q.Get("id_token_hint") == "" ||
		q.Get("client_id") != testClientID || q.Get("post_logout_redirect_uri") != e.rpURL+"/signed-out" {
		t.Fatalf("logout answered %d to %s", p.Status, loc)
	}
	if e.identified(b) {
		t.Error("the session survived the logout")
	}
	if ev, ok := e.events.last(EventLogout); !ok || ev.Subject != "alice" || ev.SessionHash != w.Hash {
		t.Errorf("logout event %+v, %v", ev, ok)
	}
	p = b.Get(loc.String())
	if p.URL.String() != e.rpURL+"/signed-out" || p.Body != "signed out" {
		t.Errorf("provider logout ended at %d %s", p.Status, p.URL)
	}
	// The provider's session is gone too: the next login asks again.
	if p := b.Get(e.rpURL + "/"); !e.atLogin(p) {
		t.Errorf("after logout, a new login ended at %s without the form", p.URL)
	}
	if strings.Contains(p.Body, w.CSRF) {
		t.Error("a page shows the old CSRF token")
	}

	// Without a session there is nothing to protect: the cookie goes, and
	// the browser goes to the post-logout URL.
	nobody := e.browser(t)
	nobody.Stop = func(*http.Request) bool { return true }
	if p := nobody.Post(logoutURL, url.Values{}, nil); p.Status != http.StatusSeeOther || p.Header.Get("Location") != e.rpURL+"/signed-out" {
		t.Errorf("logout without session: %d to %q", p.Status, p.Header.Get("Location"))
	}
}

// The CSRF token also works as a header, for pages that log out with
// fetch; it is bound to one session and stable for its life.
func TestCSRFToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	b := e.browser(t)
	w := who(t, e.login(b, "/", "alice"))
	if again := who(t, b.Get(e.rpURL+"/")); again.CSRF != w.CSRF {
		t.Error("the CSRF token changed within the session")
	}
	if e.rp.CSRFToken(nil) != "" {
		t.Error("CSRFToken(nil) is not empty")
	}
	b.stopAtProvider()
	p := b.Post(e.rpURL+DefaultLogoutPath, url.Values{}, http.Header{CSRFHeader: {w.CSRF}})
	if p.Status != http.StatusSeeOther || e.identified(b) {
		t.Errorf("logout with the header token: %d, still identified %v", p.Status, e.identified(b))
	}
}
