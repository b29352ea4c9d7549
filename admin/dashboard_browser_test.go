package admin

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/chrometest"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// Markup in audit events, a user name and the policy revision is shown as
// text: a real Chromium runs the page against hostile values and no
// element or script of theirs appears (stored XSS through the audit
// trail). The same run signs in with the token, revokes a session with
// its button and checks that the token survives a reload of the tab.
func TestDashboardInBrowser(t *testing.T) {
	const (
		scriptSubject = `<script>window.pwned=1</script>`
		imgPath       = `/api/contacts?q="><img src=x onerror="window.pwned=2">`
		svgMessage    = `<svg onload="window.pwned=3"></svg> bad login`
		evilUser      = `<img src=x onerror="window.pwned=4">mallory`
		evilRevision  = `<b id="injected">rev-7</b>`
	)
	m, _ := sessionsFixture(t)
	w := httptest.NewRecorder()
	if err := m.Start(context.Background(), w, &session.Record{UserID: evilUser}, session.ID{}); err != nil {
		t.Fatal(err)
	}
	evilCookie := w.Result().Cookies()[0]
	list, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var evilHash string
	for _, x := range list {
		if x.UserID == evilUser {
			evilHash = x.Hash
		}
	}

	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	s.SetSessions(m)
	now := time.Now()
	s.SetEventFeed(&fakeFeed{events: []FeedEvent{
		{Time: now, Type: "http.request", Severity: "info", Subject: scriptSubject, ClientIP: "192.0.2.7", Method: "GET", Path: imgPath, Status: 403, Message: "denied"},
		{Time: now.Add(-time.Second), Type: "auth.login.failure", Severity: "medium", Subject: "eve", Message: svgMessage},
		{Time: now.Add(-2 * time.Second), Type: "session.hijack_suspected", Severity: "high", Subject: "alice", Status: 401},
	}})
	s.SetPolicyStatus(func() PolicyStatus {
		return PolicyStatus{Revision: evilRevision, LastResult: "ok", LastReload: now}
	})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	b := chrometest.Start(t, chrometest.Options{})
	b.Navigate(srv.URL + "/dashboard")
	b.WaitText("Enter the admin token")
	if text := b.Text(); strings.Contains(text, "Active sessions") {
		t.Errorf("the page shows its panels before the token:\n%s", text)
	}
	b.Fill("#token", "not-the-token")
	b.Click(`#token-form button[type="submit"]`)
	b.WaitText("The token was refused")

	b.Fill("#token", token)
	b.Click(`#token-form button[type="submit"]`)
	b.WaitText("Latest audit events")
	for _, want := range []string{scriptSubject, imgPath, svgMessage, evilUser, evilRevision, "Active sessions: 4", "session.hijack_suspected"} {
		b.WaitText(want)
	}
	b.Screenshot("dashboard-hostile-values")
	if got := b.Eval(`Promise.resolve(String(typeof window.pwned))`); got != "undefined" {
		t.Errorf("a hostile value ran as script: window.pwned is %s", got)
	}
	if got := b.Eval(`Promise.resolve(String(document.querySelectorAll("main script, main img, main iframe, main #injected, #events svg, #sessions svg").length))`); got != "0" {
		t.Errorf("%s elements made from hostile values", got)
	}

	// The token stays in the tab: a reload opens the dashboard directly.
	b.Navigate(srv.URL + "/dashboard")
	b.WaitText("Active sessions: 4")

	// The charts draw once two samples are in.
	b.WaitText("last 10 minutes:")
	if got := b.Eval(`Promise.resolve(String(document.querySelectorAll(".chart-plot svg polyline").length))`); got != "5" {
		t.Errorf("%s chart lines drawn, want 5", got)
	}

	b.Click(`tr[data-session="` + evilHash + `"] button.revoke`)
	b.WaitText("The session of " + evilUser + " was revoked.")
	b.WaitText("Active sessions: 3")
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(evilCookie)
	if _, err := m.Load(r); err == nil {
		t.Error("the session is alive after the revoke button")
	}
	for _, msg := range b.Console() {
		if strings.Contains(msg, "Content Security Policy") || strings.Contains(msg, "Uncaught") {
			t.Errorf("browser console: %s", msg)
		}
	}
}
