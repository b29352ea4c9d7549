package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/redistest"
)

// The gateway's own outputs — its log at debug level and its decision log —
// never hold a secret that passed through it: session cookies, API keys
// (valid or not), bearer tokens, Basic credentials, the admin token, the
// user's password and second factor, or secrets a client put in the query
// string; nor the values a redaction removed from a response. Every
// credential is sent the way an attacker probing the gateway would send
// it, to the routes and endpoints that handle it.
func TestOutputsHoldNoSecrets(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr, "--policy", mustAbs(t, "../policies"))
	decisions := filepath.Join(t.TempDir(), "decisions.log")
	r := startReplica(t, d, func(c string) string {
		return c + fmt.Sprintf("\nlog:\n  level: debug\ndecision_log:\n  output: %q\n", decisions)
	})

	b := d.browser(t)
	password, totp := d.user(t, "carol")
	if p := d.login(t, b, r.URL, "/api/contacts/1", "carol"); p.Status != http.StatusOK {
		t.Fatalf("carol signs in: %d %s", p.Status, tail(p.Body, 300))
	}
	cookie := b.Cookie(d.GatewayURL, sessionCookieName)
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	token := d.accessToken(t, "carol", true)
	key := d.APIKeys[0].Key
	forged := key[:len(key)-4] + "AAAA"
	secrets := map[string]string{
		"session cookie": cookie.Value,
		"API key":        key,
		"wrong API key":  forged,
		"access token":   token,
		"password":       password,
		"TOTP secret":    totp,
		"admin token":    d.AdminToken,
		"query secret":   "qs-secret-7f3a9c",
		"basic password": "basic-secret-51d2",
	}

	send := func(method, path string, hdr ...string) {
		t.Helper()
		req, _ := http.NewRequest(method, r.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		res, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// The session's own client: with the session cookie, including on a
	// path the policy refuses and one that does not exist.
	for _, path := range []string{"/api/contacts/1", "/api/admin/users", "/nope", "/api/contacts/1?token=" + secrets["query secret"]} {
		b.Get(r.URL + path)
	}
	send("GET", "/api/contacts/1", "X-API-Key", key)
	send("GET", "/api/contacts/1?api_key="+secrets["query secret"], "X-API-Key", forged)
	send("GET", "/api/contacts/1", "Authorization", "Bearer "+token)
	send("GET", "/api/contacts/1", "Authorization", "Bearer "+token+"x")
	send("GET", "/api/contacts/1", "Authorization", "Basic "+basicAuth("carol", secrets["basic password"]))
	send("GET", "/api/contacts/1", "Cookie", sessionCookieName+"="+cookie.Value+"tampered")
	send("GET", "/api/contacts/1", "X-API-Key", key, "Authorization", "Bearer "+token)
	send("POST", "/.crmgate/logout", "Cookie", sessionCookieName+"="+cookie.Value, "X-CSRF-Token", secrets["query secret"])
	req, _ := http.NewRequest("GET", r.AdminURL+"/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	req, _ = http.NewRequest("GET", r.AdminURL+"/sessions", nil)
	req.Header.Set("Authorization", "Bearer "+d.AdminToken+"x")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	// What carol may not see (the shipped sales view removes ssn): read
	// as alice, whose redacted response must not leave it in any log.
	alice := d.browser(t)
	d.login(t, alice, r.URL, "/api/contacts?per_page=50", "alice")

	time.Sleep(500 * time.Millisecond) // log lines are flushed every 100 ms
	outputs := map[string]string{"replica log": r.out.String(), "demo log": readFile(t, d.Log), "decision log": readFile(t, decisions)}
	if !strings.Contains(outputs["decision log"], `"decision_id"`) || !strings.Contains(outputs["replica log"], `"level":"DEBUG"`) {
		t.Fatalf("the outputs are not what this test reads:\n%s", tail(outputs["decision log"], 400))
	}
	for name, out := range outputs {
		for what, v := range secrets {
			if strings.Contains(out, v) {
				t.Errorf("the %s holds the %s", name, what)
			}
		}
		// SSNs of the sample CRM look like 123-45-6789.
		if i := strings.Index(out, `"ssn"`); i >= 0 {
			t.Errorf("the %s holds an ssn field: %s", name, out[max(0, i-200):min(len(out), i+100)])
		}
	}
}

// basicAuth is the credentials part of an Authorization: Basic field.
func basicAuth(user, password string) string {
	req, _ := http.NewRequest("GET", "https://x/", nil)
	req.SetBasicAuth(user, password)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
