package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/chrometest"
)

// chromium starts headless Chromium trusting the certificates the demo's
// gateway and IdP present, as issued by the demo's development CA.
func (d *demo) chromium(t *testing.T) *chrometest.Browser {
	t.Helper()
	return chrometest.Start(t, chrometest.Options{CAFile: d.CACert, Trust: []string{d.GatewayURL, d.IdPURL}})
}

// chromiumSignIn signs in as user in b, starting at path on the gateway:
// the IdP's password form, then its code form when it asks for one. It
// saves a screenshot of each form and returns on the first page served
// by the gateway.
func (d *demo) chromiumSignIn(t *testing.T, b *chrometest.Browser, path, user string) *url.URL {
	t.Helper()
	gw, idp := mustURL(t, d.GatewayURL), mustURL(t, d.IdPURL)
	b.Navigate(d.GatewayURL + path)
	if u := b.URL(); u.Host != idp.Host || u.Path != "/login" {
		t.Fatalf("the gateway sent the browser to %s, want the IdP's login form", u)
	}
	b.WaitText("Sign in to continue")
	b.Screenshot("01-login-form.png")

	password, totp := d.user(t, user)
	b.Fill("#username", user)
	b.Fill("#password", password)
	b.Submit(`button[type="submit"]`)
	if u := b.URL(); u.Host == idp.Host && u.Path == "/login/otp" {
		b.Screenshot("01-otp-form.png")
		b.Fill("#otp", browsertest.TOTP(t, totp))
		b.Submit(`button[type="submit"]`)
	}
	return b.WaitHost(gw.Host)
}

// A person signs in with a real browser: headless Chromium follows the
// gateway's redirect to the demo IdP, types alice's password, and reads
// the CRM's start page through the gateway, which holds her session in a
// cookie no script can read.
func TestBrowserSignIn(t *testing.T) {
	d := startDemo(t)
	b := d.chromium(t)

	u := d.chromiumSignIn(t, b, "/", "alice")
	if u.Path != "/" {
		t.Errorf("signed in at %s, want the page first asked for, /", u)
	}
	// The CRM's start page as the gateway serves it to alice: the CRM
	// names the user the gateway vouched for, with her roles.
	b.WaitText("Signed in as alice (sales)")
	text := b.Text()
	for _, want := range []string{"Acme CRM", "Contacts", "Showing 20 of"} {
		if !strings.Contains(text, want) {
			t.Errorf("the signed-in page lacks %q:\n%s", want, tail(text, 600))
		}
	}
	b.Screenshot("02-signed-in.png")

	c := b.Cookie(d.GatewayURL, sessionCookieName)
	switch {
	case c == nil:
		t.Errorf("the browser holds no %s cookie for %s", sessionCookieName, d.GatewayURL)
	case !c.HTTPOnly || !c.Secure:
		t.Errorf("%s: HttpOnly %v, Secure %v; want both", sessionCookieName, c.HTTPOnly, c.Secure)
	}
	// The IdP's pages allow their one style sheet by nonce and their form
	// to post to the IdP and, through its redirect, the gateway; a real
	// browser reports what such a policy blocks.
	for _, m := range b.Console() {
		if strings.Contains(m, "Content Security Policy") {
			t.Errorf("the browser blocked something on the way: %s", m)
		}
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// carol, an admin, deletes a contact from the CRM's page in a real
// browser. The page's script gets 401 with a step-up link; the browser
// opens it, the demo IdP asks for carol's password again and her TOTP
// code, and the gateway brings her to a page that asks her to repeat the
// action; repeated, the delete goes through. The demo enforces the
// shipped policy (crmgate demo --policy policies).
func TestBrowserStepUp(t *testing.T) {
	d := startDemo(t, "--policy", "../policies")
	r := &replica{URL: d.GatewayURL}
	b := d.chromium(t)
	d.chromiumSignIn(t, b, "/", "carol")
	b.WaitText("Signed in as carol (admin)")
	b.Screenshot("02-signed-in.png")

	del := `fetch("/api/contacts/9", {method: "DELETE", headers: {"Accept": "application/json"}}).then(async r => r.status + " " + await r.text())`
	res := b.Eval(del)
	status, body, _ := strings.Cut(res, " ")
	if status != "401" {
		t.Fatalf("the page's DELETE: %s", res)
	}
	var prob struct {
		StepUpURL string `json:"step_up_url"`
	}
	if err := json.Unmarshal([]byte(body), &prob); err != nil || !strings.HasPrefix(prob.StepUpURL, "/.crmgate/step-up?") {
		t.Fatalf("no step-up link in %s", body)
	}

	b.Navigate(r.URL + prob.StepUpURL)
	idp := mustURL(t, d.IdPURL)
	if u := b.URL(); u.Host != idp.Host || u.Path != "/login" {
		t.Fatalf("the step-up link led to %s, want the IdP's login form (prompt=login)", u)
	}
	password, totp := d.user(t, "carol")
	b.Fill("#username", "carol")
	b.Fill("#password", password)
	b.Submit(`button[type="submit"]`)
	if u := b.URL(); u.Path != "/login/otp" {
		t.Fatalf("no TOTP prompt for the step-up: %s", u)
	}
	b.Screenshot("03-step-up-otp.png")
	b.Fill("#otp", browsertest.TOTP(t, totp))
	b.Submit(`button[type="submit"]`)
	b.WaitText("Verification complete")
	b.Screenshot("04-step-up-done.png")

	// Back on the CRM's page, the repeated delete goes through.
	b.Navigate(r.URL + "/")
	b.WaitText("Signed in as carol (admin)")
	if res := b.Eval(del); !strings.HasPrefix(res, "204 ") {
		t.Fatalf("the repeated DELETE: %s", res)
	}
	if res := b.Eval(`fetch("/api/contacts/9", {headers: {"Accept": "application/json"}}).then(r => String(r.status))`); res != "404" {
		t.Errorf("the contact after the delete: %s", res)
	}
	b.Screenshot("05-deleted.png")
}

// A real browser is one client however it connects: Chromium orders its
// TLS extensions at random on every connection, resumes sessions and
// speaks HTTP/2, and the session it signed in with keeps working in a
// new window (a new connection, the cookie copied over), while the same
// cookie in a script is revoked on first use.
func TestBrowserSessionBinding(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	b := d.chromium(t)
	const page = "/api/contacts/1"
	if u := d.chromiumSignIn(t, b, page, "carol"); u.Path != page {
		t.Fatalf("signed in at %s, want %s", u, page)
	}
	b.WaitText(`"id":1`)
	c := b.Cookie(d.GatewayURL, sessionCookieName)
	if c == nil {
		t.Fatal("no session cookie")
	}

	handshakes := func() int {
		n := 0
		for _, l := range strings.Split(grepLines(d.metricsAt(t, d.AdminURL), "crmgate_tls_handshakes_total"), "\n") {
			if !strings.Contains(l, `result="ok"`) {
				continue
			}
			var v int
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				fmt.Sscan(l[i+1:], &v)
			}
			n += v
		}
		return n
	}
	for i := range 3 {
		before := handshakes()
		w := b.NewWindow()
		w.SetCookie(d.GatewayURL, c)
		w.Navigate(d.GatewayURL + page)
		if u := w.URL(); u.Host != mustURL(t, d.GatewayURL).Host || !strings.Contains(w.Text(), `"id":1`) {
			t.Fatalf("window %d: at %s\n%s", i, u, tail(w.Text(), 400))
		}
		if after := handshakes(); after <= before {
			t.Errorf("window %d made no new TLS connection (%d handshakes before, %d after)", i, before, after)
		}
	}

	// The cookie in a script: revoked, and the browser signs in again.
	thief := d.browser(t)
	thief.SetCookie(d.GatewayURL, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/", Secure: true, HttpOnly: true})
	if p := getJSON(thief, d.GatewayURL, page); p.Status != http.StatusUnauthorized {
		t.Fatalf("the cookie in a script: %d %s", p.Status, tail(p.Body, 300))
	}
	w := b.NewWindow()
	w.SetCookie(d.GatewayURL, c)
	w.Navigate(d.GatewayURL + page)
	if u := w.URL(); u.Host != mustURL(t, d.IdPURL).Host {
		t.Errorf("the browser after the revocation is at %s, want the IdP's sign-in", u)
	}
}
