package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/proxy/assertion"
)

// A browser user's whole journey through the real binary and the demo
// IdP: challenge, PKCE login, the cookie, what the CRM receives, logout.
func TestBrowserLogin(t *testing.T) {
	d := startDemo(t)
	gw, _ := url.Parse(d.GatewayURL)
	idp, _ := url.Parse(d.IdPURL)

	t.Run("API clients get 401, browsers a PKCE login redirect", func(t *testing.T) {
		res, body := d.get(t, "/api/contacts/7", "Accept", "application/json")
		if res.StatusCode != 401 || res.Header.Get("Www-Authenticate") == "" || res.Header.Get("Location") != "" {
			t.Errorf("API client: %d, WWW-Authenticate %q, Location %q: %s", res.StatusCode, res.Header.Get("Www-Authenticate"), res.Header.Get("Location"), body)
		}
		res, _ = d.get(t, "/api/contacts/7", "Accept", "text/html,application/xhtml+xml")
		loc, err := url.Parse(res.Header.Get("Location"))
		if (res.StatusCode != 302 && res.StatusCode != 303) || err != nil || loc.Host != idp.Host {
			t.Fatalf("browser: %d to %q, want a redirect to the IdP", res.StatusCode, res.Header.Get("Location"))
		}
		q := loc.Query()
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43 || q.Get("response_type") != "code" ||
			len(q.Get("state")) < 22 || len(q.Get("nonce")) < 22 || q.Get("redirect_uri") != d.GatewayURL+"/.crmgate/callback" {
			t.Errorf("authorization request %v", q)
		}
	})

	b := d.browser(t)
	t.Run("login returns to the page first asked for with a __Host- cookie", func(t *testing.T) {
		// Stop right after the callback to read its Set-Cookie.
		b.Stop = func(next *http.Request) bool {
			return next.URL.Host == gw.Host && next.URL.Path != "/.crmgate/callback"
		}
		defer func() { b.Stop = nil }()
		p := b.Get(d.GatewayURL + "/api/contacts/7?fields=name")
		if p.URL.Host != idp.Host {
			t.Fatalf("not at the IdP: %d %s", p.Status, p.URL)
		}
		password, _ := d.user(t, "alice")
		p = b.Submit(p, map[string]string{"username": "alice", "password": password})
		if p.URL.Path != "/.crmgate/callback" || p.Status/100 != 3 {
			t.Fatalf("after the IdP: %d at %s", p.Status, p.URL)
		}
		if got := p.Location(); got == nil || got.Host != gw.Host || got.RequestURI() != "/api/contacts/7?fields=name" {
			t.Errorf("callback redirects to %v, want the page first asked for", got)
		}
		var set string
		for _, c := range p.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, sessionCookieName+"=") {
				set = c
			}
		}
		for _, attr := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(set, "; "+attr) {
				t.Errorf("session cookie lacks %s: %q", attr, set)
			}
		}
		if strings.Contains(strings.ToLower(set), "domain=") {
			t.Errorf("session cookie has a Domain: %q", set)
		}
		if v := strings.TrimPrefix(strings.SplitN(set, ";", 2)[0], sessionCookieName+"="); len(v) < 22 {
			t.Errorf("session cookie value %q is too short to carry 128 bits", v)
		}
		b.Stop = nil
		p = b.Get(p.Location().String())
		if p.Status != 200 || !strings.Contains(p.Body, `"id"`) {
			t.Errorf("the page first asked for: %d %s", p.Status, tail(p.Body, 200))
		}
	})
	cookie := cookieOf(t, b, d.GatewayURL)

	t.Run("the CRM sees the gateway's identity headers and a verifiable assertion", func(t *testing.T) {
		res, body := d.get(t, "/api/whoami", "Cookie", cookie, "X-CRM-User", "carol", "X-CRM-Roles", "admin", "X-CRM-Assertion", "forged")
		if res.StatusCode != 200 {
			t.Fatalf("whoami %d %s", res.StatusCode, body)
		}
		s := decodeSeen(t, body)
		if email := s.Headers["X-Crm-Email"]; s.User != "alice" || s.Roles != "sales" || len(email) != 1 || !strings.HasPrefix(email[0], "alice@") {
			t.Errorf("CRM saw user %q roles %q email %q", s.User, s.Roles, s.Headers["X-Crm-Email"])
		}
		toks := s.Headers["X-Crm-Assertion"]
		if len(toks) != 1 || toks[0] == "forged" {
			t.Fatalf("CRM saw assertions %q", toks)
		}
		c := verifyAssertion(t, d, toks[0])
		if c.Subject != "alice" || c.Method != "GET" || c.Path != "/api/whoami" || c.Issuer != d.GatewayURL ||
			!slices.Equal(c.Roles, []string{"sales"}) || !slices.Contains(c.AMR, "pwd") || c.AuthTime == 0 ||
			c.RequestID != res.Header.Get("X-Request-Id") || c.Expiry-c.IssuedAt != 60 {
			t.Errorf("assertion claims %+v (request id %s)", c, res.Header.Get("X-Request-Id"))
		}
		for _, v := range s.Headers["Cookie"] {
			if strings.Contains(v, sessionCookieName) {
				t.Errorf("the session cookie reached the CRM: %q", v)
			}
		}
	})

	t.Run("the admin API lists the session, never its cookie", func(t *testing.T) {
		res, body := d.adminGet(t, "/sessions?user=alice")
		if res.StatusCode != 200 || !strings.Contains(string(body), `"count":1`) {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		if v := strings.TrimPrefix(cookie, sessionCookieName+"="); strings.Contains(string(body), v) {
			t.Error("the listing contains the cookie value")
		}
	})

	t.Run("local logout: CSRF-protected, ends the session and the IdP's", func(t *testing.T) {
		logout := d.GatewayURL + "/.crmgate/logout"
		if p := b.Post(logout, url.Values{}, nil); p.Status != 403 {
			t.Errorf("logout without a CSRF token: %d", p.Status)
		}
		if p := b.Post(logout, url.Values{"csrf": {"forged"}}, nil); p.Status != 403 {
			t.Errorf("logout with a forged CSRF token: %d", p.Status)
		}
		if res, _ := d.get(t, "/api/contacts/1", "Cookie", cookie); res.StatusCode != 200 {
			t.Fatalf("a refused logout ended the session: %d", res.StatusCode)
		}
		form := b.Get(logout)
		if form.Status != 200 {
			t.Fatalf("logout page %d", form.Status)
		}
		p := b.Submit(form, nil)
		// The IdP ends its session and sends the browser back to the
		// gateway, which (no session) sends it to a fresh login form.
		if p.URL.Host != idp.Host || p.URL.Path != "/login" {
			t.Errorf("after logout: %d at %s", p.Status, p.URL)
		}
		if c := b.Cookie(d.GatewayURL, sessionCookieName); c != nil {
			t.Errorf("the browser still holds a session cookie")
		}
		if res, _ := d.get(t, "/api/contacts/1", "Cookie", cookie); res.StatusCode != 401 {
			t.Errorf("replayed cookie after logout: %d, want 401", res.StatusCode)
		}
	})

	t.Run("back-channel logout from the IdP ends that session only", func(t *testing.T) {
		b1, b2 := d.browser(t), d.browser(t)
		for _, x := range []*browsertest.Browser{b1, b2} {
			if p := d.login(t, x, d.GatewayURL, "/api/contacts/1", "dave"); p.Status != 200 {
				t.Fatalf("login: %d %s", p.Status, p.URL)
			}
		}
		c1, c2 := cookieOf(t, b1, d.GatewayURL), cookieOf(t, b2, d.GatewayURL)
		// The user signs out at the IdP itself, not at the gateway.
		if p := b1.Get(d.IdPURL + "/end_session"); p.Status != 200 {
			t.Fatalf("end_session: %d at %s", p.Status, p.URL)
		}
		waitStatus(t, d.GatewayURL, d, c1, 401, 2*time.Second)
		if res, _ := d.get(t, "/api/contacts/1", "Cookie", c2); res.StatusCode != 200 {
			t.Errorf("dave's other session ended too: %d", res.StatusCode)
		}
	})

	t.Run("crmgate session revoke ends a user's sessions", func(t *testing.T) {
		c := d.session(t, "bob")
		out, code := runCrmgate(t, nil, "session", "list", "-c", d.Config)
		if code != 0 || !strings.Contains(out, "bob") {
			t.Fatalf("session list: %d\n%s", code, out)
		}
		out, code = runCrmgate(t, []string{"CRMGATE_ADMIN_TOKEN=" + d.AdminToken}, "session", "revoke", "--admin", d.AdminURL, "--user", "bob")
		if code != 0 || !strings.Contains(out, "revoked 1 session(s)") {
			t.Fatalf("session revoke: %d\n%s", code, out)
		}
		if res, _ := d.get(t, "/api/contacts/1", "Cookie", c); res.StatusCode != 401 {
			t.Errorf("revoked session: %d, want 401", res.StatusCode)
		}
		if out, code := runCrmgate(t, []string{"CRMGATE_ADMIN_TOKEN=wrong-token-value-that-is-long-enough"}, "session", "revoke", "--admin", d.AdminURL, "--all"); code == 0 || !strings.Contains(out, "401") {
			t.Errorf("revoke with a wrong token: %d\n%s", code, out)
		}
	})
}

// verifyAssertion checks tok as a CRM would, against the gateway's
// published key set, and returns its claims.
func verifyAssertion(t *testing.T, d *demo, tok string) assertion.Claims {
	t.Helper()
	res, body := d.get(t, "/.crmgate/jwks.json")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/jwk-set+json" || d.JWKSURL != d.GatewayURL+"/.crmgate/jwks.json" {
		t.Fatalf("jwks: %d %s (demo.json jwks_url %q)", res.StatusCode, res.Header.Get("Content-Type"), d.JWKSURL)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || h.ExtraHeaders[jose.HeaderType] != assertion.Type {
		t.Fatalf("kid %q typ %v not in the key set %s", h.KeyID, h.ExtraHeaders[jose.HeaderType], body)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c assertion.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitStatus polls path /api/contacts/1 with cookie at base until it
// answers want, and fails after limit. It returns how long that took.
func waitStatus(t *testing.T, base string, d *demo, cookie string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		req, _ := http.NewRequest("GET", base+"/api/contacts/1", nil)
		req.Header.Set("Cookie", cookie)
		res, err := d.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == want {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("%s still not %d after %s (last %v %v)", base, want, limit, statusOf(res), err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(res *http.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}
