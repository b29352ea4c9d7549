package e2e

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// sessionCookieName is the demo's session cookie.
const sessionCookieName = "__Host-crmgate"

// user returns the demo.json entry of name.
func (d *demo) user(t *testing.T, name string) (password, totpSecret string) {
	t.Helper()
	for _, u := range d.Users {
		if u.Username == name {
			return u.Password, u.TOTPSecret
		}
	}
	t.Fatalf("no demo user %q in demo.json", name)
	return "", ""
}

// browser is a new browser that trusts the demo CA.
func (d *demo) browser(t *testing.T, opts ...browsertest.Option) *browsertest.Browser {
	return browsertest.New(t, d.pool, opts...)
}

// login navigates b to path on the gateway, signs in at the demo IdP as
// user (password, then TOTP when asked) and returns the page the browser
// lands on.
func (d *demo) login(t *testing.T, b *browsertest.Browser, gatewayURL, path, user string) browsertest.Page {
	t.Helper()
	p := b.Get(gatewayURL + path)
	idp, err := url.Parse(d.IdPURL)
	if err != nil {
		t.Fatal(err)
	}
	if p.URL.Host != idp.Host || p.URL.Path != "/login" || p.Status != 200 {
		t.Fatalf("GET %s did not lead to the IdP's login form: %d at %s\n%s", path, p.Status, p.URL, tail(p.Body, 600))
	}
	password, totp := d.user(t, user)
	p = b.Submit(p, map[string]string{"username": user, "password": password})
	if p.URL.Host == idp.Host && p.URL.Path == "/login/otp" {
		p = b.Submit(p, map[string]string{"otp": browsertest.TOTP(t, totp)})
	}
	return p
}

// cookieOf returns the session cookie b holds for the gateway, as a
// Cookie header value.
func cookieOf(t *testing.T, b *browsertest.Browser, gatewayURL string) string {
	t.Helper()
	c := b.Cookie(gatewayURL, sessionCookieName)
	if c == nil {
		t.Fatalf("the browser holds no %s cookie for %s", sessionCookieName, gatewayURL)
	}
	return c.Name + "=" + c.Value
}

var sessionCache sync.Map // *demo + user → cookie

// session returns a Cookie header value of a signed-in session of user,
// signing in once per demo and user.
func (d *demo) session(t *testing.T, user string) string {
	t.Helper()
	key := d.dir + "\x00" + user
	if v, ok := sessionCache.Load(key); ok {
		return v.(string)
	}
	// The session is bound to the client that signs in: sign in with the
	// TLS and HTTP/1.1 offer of d.client and d.raw, which replay it.
	b := d.browser(t, browsertest.HTTP1())
	p := d.login(t, b, d.GatewayURL, "/api/contacts?per_page=1", user)
	if p.Status != 200 {
		t.Fatalf("sign-in as %s ended at %d %s:\n%s", user, p.Status, p.URL, tail(p.Body, 600))
	}
	c := cookieOf(t, b, d.GatewayURL)
	sessionCache.Store(key, c)
	return c
}

// hostField is a CRLF-framed Host field of a raw request head.
var hostField = regexp.MustCompile("\r\nHost: [^\r\n]*\r\n")

// withCookie adds a Cookie field to every request head of a raw HTTP/1.1
// payload (after each CRLF-terminated Host field).
func withCookie(payload, cookie string) string {
	return hostField.ReplaceAllStringFunc(payload, func(h string) string { return h + "Cookie: " + cookie + "\r\n" })
}

// adminGet calls the admin API with the demo's admin token.
func (d *demo) adminGet(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	return d.adminDo(t, "GET", path, "")
}

func (d *demo) adminDo(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, d.AdminURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}
