package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/redistest"
)

// chromeUA is a desktop Chrome's User-Agent of the given major version.
func chromeUA(major int) string {
	return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36", major)
}

const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"

// connLog records the TLS connections a client made.
type connLog struct {
	mu       sync.Mutex
	resumed  int
	h2, full int
}

func (c *connLog) verify(cs tls.ConnectionState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs.DidResume {
		c.resumed++
	} else {
		c.full++
	}
	if cs.NegotiatedProtocol == "h2" {
		c.h2++
	}
	return nil
}

// victimOptions are the options of the signed-in user's client: Chrome's
// User-Agent, HTTP/2, TLS sessions kept for resumption, every connection
// logged.
func victimOptions(log *connLog) []browsertest.Option {
	cache := tls.NewLRUClientSessionCache(16)
	return []browsertest.Option{
		browsertest.WithUserAgent(chromeUA(130)),
		browsertest.WithTLS(func(c *tls.Config) {
			c.ClientSessionCache = cache
			c.VerifyConnection = log.verify
		}),
	}
}

// stolen returns a client made with opts that holds the session cookie
// of victim for gatewayURL, as an attacker who copied it would.
func stolen(t *testing.T, d *demo, victim *browsertest.Browser, gatewayURL string, opts ...browsertest.Option) *browsertest.Browser {
	t.Helper()
	c := victim.Cookie(gatewayURL, sessionCookieName)
	if c == nil {
		t.Fatalf("the victim holds no session cookie for %s", gatewayURL)
	}
	thief := d.browser(t, opts...)
	thief.SetCookie(gatewayURL, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/", Secure: true, HttpOnly: true})
	return thief
}

// getJSON is a script's GET of path: JSON asked for, no redirects.
func getJSON(b *browsertest.Browser, base, path string) browsertest.Page {
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Accept", "application/json")
	return b.Do(req)
}

// A session is bound to the client that signed in. Replayed from another
// TLS client stack or another browser, its cookie is revoked on first use,
// on every replica, with a high-severity event that names both
// fingerprints; from another network, or after a browser update, the user
// signs in again and the session is bound to the new client. The
// legitimate client keeps working across new connections, resumed TLS
// sessions and HTTP/2. The shipped policy decides all of it.
func TestSessionHijack(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr, "--policy", mustAbs(t, "../policies"))
	r := startReplica(t, d, nil)
	const page = "/api/contacts/1"

	signIn := func(t *testing.T, log *connLog) *browsertest.Browser {
		t.Helper()
		b := d.browser(t, victimOptions(log)...)
		if p := d.login(t, b, d.GatewayURL, page, "carol"); p.Status != http.StatusOK {
			t.Fatalf("carol signs in: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 400))
		}
		return b
	}
	revoked := func(t *testing.T, who string, b *browsertest.Browser, base string) {
		t.Helper()
		p := getJSON(b, base, page)
		if p.Status != http.StatusUnauthorized || strings.Contains(p.Body, `"email"`) {
			t.Fatalf("%s: %d %s, want 401 and no data", who, p.Status, tail(p.Body, 300))
		}
		if c := p.Header.Get("Set-Cookie"); !strings.Contains(c, sessionCookieName+"=;") {
			t.Errorf("%s: the session cookie is not expired on the response: %q", who, c)
		}
	}

	t.Run("the signed-in client keeps working", func(t *testing.T) {
		var log connLog
		b := signIn(t, &log)
		// New connections to either gateway: the TLS session is resumed
		// (a client keeps one ticket per host name, so the gateways are
		// asked in turn, not alternately), and JA4 is computed without the
		// resumption extensions.
		for _, base := range []string{d.GatewayURL, r.URL} {
			for i := range 3 {
				b.CloseIdleConnections()
				if p := getJSON(b, base, page); p.Status != http.StatusOK {
					t.Fatalf("request %d to %s on a new connection: %d %s", i, base, p.Status, tail(p.Body, 300))
				}
			}
		}
		log.mu.Lock()
		defer log.mu.Unlock()
		if log.resumed == 0 || log.h2 == 0 {
			t.Errorf("connections: %d full, %d resumed, %d HTTP/2; want resumed HTTP/2 connections among them", log.full, log.resumed, log.h2)
		}
	})

	t.Run("another TLS client stack is revoked on first use, on every replica", func(t *testing.T) {
		var log connLog
		victim := signIn(t, &log)
		thief := stolen(t, d, victim, r.URL, browsertest.WithUserAgent(chromeUA(130)), browsertest.WithTLS(func(c *tls.Config) {
			// Same browser name, another TLS library's offer.
			c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			c.CurvePreferences = []tls.CurveID{tls.CurveP256}
			c.MaxVersion = tls.VersionTLS12
		}))
		revoked(t, "the thief at the replica", thief, r.URL)
		// The victim's own cookie is dead at the other gateway too:
		// scripts get 401, browsers are sent to sign in.
		if p := getJSON(victim, d.GatewayURL, page); p.Status != http.StatusUnauthorized {
			t.Errorf("the victim's script after the revocation: %d", p.Status)
		}
		idp := mustURL(t, d.IdPURL)
		victim.Stop = func(next *http.Request) bool { return next.URL.Host == idp.Host }
		if p := victim.Get(d.GatewayURL + page); p.Location() == nil || p.Location().Host != idp.Host {
			t.Errorf("the victim's browser after the revocation: %d %s, want a redirect to the IdP", p.Status, p.Header.Get("Location"))
		}
		ev := waitEvent(t, r.out.String, "session.hijack_suspected")
		if ev["severity"] != "high" || ev["subject"] != "carol" {
			t.Errorf("event: %v", ev)
		}
		bound, _ := ev["bound_fingerprint"].(map[string]any)
		now, _ := ev["fingerprint"].(map[string]any)
		if bound["ja4"] == nil || now["ja4"] == nil || bound["ja4"] == now["ja4"] || fmt.Sprint(ev["changed"]) != "[ja4]" {
			t.Errorf("event fingerprints: bound %v, now %v, changed %v", bound, now, ev["changed"])
		}
		if m := d.metricsAt(t, r.AdminURL); !strings.Contains(m, `crmgate_session_actions_total{action="revoke"} 1`) {
			t.Errorf("replica metrics lack the revocation:\n%s", grepLines(m, "crmgate_session_"))
		}
	})

	t.Run("ALPN alone is another client", func(t *testing.T) {
		var log connLog
		victim := signIn(t, &log)
		thief := stolen(t, d, victim, d.GatewayURL, browsertest.WithUserAgent(chromeUA(130)), browsertest.HTTP1())
		revoked(t, "an HTTP/1.1-only client", thief, d.GatewayURL)
	})

	t.Run("another browser or no User-Agent is revoked", func(t *testing.T) {
		for _, ua := range []string{firefoxUA, "curl/8.5.0", chromeUA(129), ""} {
			var log connLog
			victim := signIn(t, &log)
			// The victim's very TLS configuration: only the header differs.
			thief := stolen(t, d, victim, d.GatewayURL, append(victimOptions(&log), browsertest.WithUserAgent(ua))...)
			revoked(t, fmt.Sprintf("User-Agent %q", ua), thief, d.GatewayURL)
			if p := getJSON(victim, d.GatewayURL, page); p.Status != http.StatusUnauthorized {
				t.Errorf("the victim after User-Agent %q: %d", ua, p.Status)
			}
		}
	})

	t.Run("a browser update steps up instead", func(t *testing.T) {
		var log connLog
		victim := signIn(t, &log)
		updated := stolen(t, d, victim, d.GatewayURL, append(victimOptions(&log), browsertest.WithUserAgent(chromeUA(131)))...)
		p := getJSON(updated, d.GatewayURL, page)
		var prob struct {
			ACR       string `json:"acr_values"`
			StepUpURL string `json:"step_up_url"`
		}
		if p.Status != http.StatusUnauthorized || json.Unmarshal([]byte(p.Body), &prob) != nil || prob.ACR != "mfa" || prob.StepUpURL == "" {
			t.Fatalf("updated browser: %d %s, want 401 with a step-up link", p.Status, p.Body)
		}
		// Not revoked: the session still serves the browser as it was.
		if p := getJSON(victim, d.GatewayURL, page); p.Status != http.StatusOK {
			t.Errorf("the session after the step-up request: %d", p.Status)
		}
	})

	t.Run("another network steps up and re-binds", func(t *testing.T) {
		var log connLog
		victim := signIn(t, &log)
		moved := stolen(t, d, victim, d.GatewayURL, append(victimOptions(&log), browsertest.WithLocalAddr("127.0.0.2"))...)
		p := getJSON(moved, d.GatewayURL, page)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "step_up_url") {
			t.Fatalf("from 127.0.0.2: %d %s, want 401 with a step-up link", p.Status, p.Body)
		}
		// Navigating, the user is sent to sign in again (password and
		// code), and comes back to the page.
		p = moved.Get(d.GatewayURL + page)
		idp := mustURL(t, d.IdPURL)
		if p.URL.Host != idp.Host || p.URL.Path != "/login" {
			t.Fatalf("navigating from 127.0.0.2: %d at %s, want the IdP's sign-in", p.Status, p.URL)
		}
		password, totp := d.user(t, "carol")
		p = moved.Submit(p, map[string]string{"username": "carol", "password": password})
		if p.URL.Path == "/login/otp" {
			p = moved.Submit(p, map[string]string{"otp": browsertest.TOTP(t, totp)})
		}
		if p.Status != http.StatusOK || p.URL.Path != page {
			t.Fatalf("after signing in again: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 300))
		}
		// Bound to the new network now: it keeps working there.
		for range 3 {
			moved.CloseIdleConnections()
			if p := getJSON(moved, d.GatewayURL, page); p.Status != http.StatusOK {
				t.Fatalf("from 127.0.0.2 after the step-up: %d %s", p.Status, p.Body)
			}
		}
	})
}

// waitEvent returns the first JSON log line of type event in what logs
// returns, waiting up to 5 seconds for it.
func waitEvent(t *testing.T, logs func() string, event string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(logs(), "\n") {
			if !strings.Contains(line, event) {
				continue
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event in the log:\n%s", event, tail(logs(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
