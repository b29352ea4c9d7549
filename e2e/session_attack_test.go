package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// What an attacker does with session cookies, against the real binary:
// none of it yields an identity, and the CRM never sees one.
func TestSessionCookieAttacks(t *testing.T) {
	d := startDemo(t)
	valid := d.session(t, "alice")
	v := strings.TrimPrefix(valid, sessionCookieName+"=")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := map[string]string{
		"tampered first byte":      sessionCookieName + "=" + flip(v, 0),
		"tampered last byte":       sessionCookieName + "=" + flip(v, len(v)-1),
		"tampered middle":          sessionCookieName + "=" + flip(v, len(v)/2),
		"truncated":                sessionCookieName + "=" + v[:len(v)-4],
		"extended":                 sessionCookieName + "=" + v + "AAAA",
		"empty":                    sessionCookieName + "=",
		"forged random":            sessionCookieName + "=" + strings.Repeat("Zm9yZ2Vk", len(v)/8+1)[:len(v)],
		"quoted":                   sessionCookieName + `="` + v + `"`,
		"twice, valid then forged": valid + "; " + sessionCookieName + "=" + flip(v, 3),
		"twice, forged then valid": sessionCookieName + "=" + flip(v, 3) + "; " + valid,
		"twice, both valid":        valid + "; " + valid,
		"name in another case":     "__host-crmgate=" + v,
		"name without prefix":      "crmgate=" + v,
		"name with __Secure-":      "__Secure-crmgate=" + v,
		"chunked name":             sessionCookieName + "0=" + v[:len(v)/2] + "; " + sessionCookieName + "1=" + v[len(v)/2:],
		"percent-encoded value":    sessionCookieName + "=" + url.QueryEscape(v+"="),
		"value with a NUL":         sessionCookieName + "=" + v[:8] + "%00" + v[8:],
	}
	for name, cookie := range cases {
		t.Run(name, func(t *testing.T) {
			res, body := d.get(t, "/api/contacts/1", "Cookie", cookie)
			if res.StatusCode != 401 && res.StatusCode != 400 {
				t.Errorf("protected route: %d %s", res.StatusCode, tail(string(body), 200))
			}
			res, body = d.get(t, "/api/whoami", "Cookie", cookie)
			if res.StatusCode == 200 {
				if s := decodeSeen(t, body); s.User == "alice" || len(s.Headers["X-Crm-Assertion"]) != 0 {
					t.Errorf("whoami identified the caller as %q", s.User)
				}
			}
		})
	}
	// The valid session is untouched by all of the above.
	if st := d.status(t, d.GatewayURL, valid); st != 200 {
		t.Errorf("the real session after the attacks: %d", st)
	}
}

// Session fixation: a cookie planted in the victim's browser before login
// (a made-up value, or a session the attacker signed in and out of) is
// never the session after it; the attacker's copy identifies no one.
func TestSessionFixation(t *testing.T) {
	d := startDemo(t)
	gw, _ := url.Parse(d.GatewayURL)
	ended := d.session(t, "bob")
	if res, body := d.adminDo(t, "POST", "/sessions/revoke", `{"user":"bob"}`); res.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", res.StatusCode, body)
	}
	for name, planted := range map[string]string{
		"made-up value":             strings.Repeat("A", 43),
		"ended session of attacker": strings.TrimPrefix(ended, sessionCookieName+"="),
	} {
		t.Run(name, func(t *testing.T) {
			b := d.browser(t)
			b.SetCookie(d.GatewayURL, &http.Cookie{Name: sessionCookieName, Value: planted, Path: "/", Secure: true, HttpOnly: true})
			p := b.Get(d.GatewayURL + "/api/contacts/1")
			if p.URL.Host == gw.Host {
				t.Fatalf("the planted cookie was a session: %d", p.Status)
			}
			password, _ := d.user(t, "alice")
			p = b.Submit(p, map[string]string{"username": "alice", "password": password})
			if p.Status != 200 || p.URL.Host != gw.Host {
				t.Fatalf("login: %d at %s", p.Status, p.URL)
			}
			after := b.Cookie(d.GatewayURL, sessionCookieName)
			if after == nil || after.Value == planted {
				t.Fatalf("the session id after login is the planted one")
			}
			if st := d.status(t, d.GatewayURL, sessionCookieName+"="+planted); st != 401 {
				t.Errorf("the planted value after the victim's login: %d, want 401", st)
			}
		})
	}
}

// Open redirects: whatever path a victim is sent to, the login leads back
// to this gateway only, and paths that could name another host are
// refused before any login starts.
func TestLoginReturnsOnlyToTheGateway(t *testing.T) {
	d := startDemo(t)
	gw, _ := url.Parse(d.GatewayURL)
	idp, _ := url.Parse(d.IdPURL)
	for _, path := range []string{
		"//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/", "/%5Cevil.example/", "/%09/evil.example/",
		"/api/contacts/..%2F..%2F%2Fevil.example", "/https:evil.example", "/api/contacts/1?next=https://evil.example/",
		"/api/contacts/1@evil.example", "/javascript:alert(1)",
	} {
		t.Run(path, func(t *testing.T) {
			b := d.browser(t)
			var hosts []string
			b.Stop = func(next *http.Request) bool {
				hosts = append(hosts, next.URL.Host)
				return next.URL.Host != gw.Host && next.URL.Host != idp.Host
			}
			req, err := http.NewRequest("GET", d.GatewayURL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := b.Do(req)
			if p.URL.Host == idp.Host && p.URL.Path == "/login" {
				password, _ := d.user(t, "alice")
				p = b.Submit(p, map[string]string{"username": "alice", "password": password})
			}
			for _, h := range hosts {
				if h != gw.Host && h != idp.Host {
					t.Fatalf("redirected to %q (final %d at %s)", h, p.Status, p.URL)
				}
			}
			if loc := p.Location(); loc != nil && loc.Host != gw.Host && loc.Host != idp.Host {
				t.Errorf("ends with a redirect to %s", loc)
			}
		})
	}
}
