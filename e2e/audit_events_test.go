package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// The security events of a gateway's life, each with its OCSF class
// (docs/audit.md): the configuration and policy at start, a sign-in, a
// failed sign-in callback, a step-up request, API key changes and a
// session revocation through the admin API, a hijacked session and a
// logout. No event holds a secret: no cookie, API key, password, TOTP
// secret, admin token or client secret.
func TestAuditSecurityEvents(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	log := d.auditFiles(t).Log
	var secrets []string // what no event may contain

	// checkEvent waits for one event of typ for which match holds and
	// checks its OCSF class and activity.
	checkEvent := func(what, typ string, class, activity int64, match func(auditEvent) bool) auditEvent {
		t.Helper()
		e := waitAudit(t, log, what, func(e auditEvent) bool { return e.typ() == typ && (match == nil || match(e)) })[0]
		if e.num("class_uid") != class || e.num("activity_id") != activity || e.num("type_uid") != class*100+activity {
			t.Errorf("%s: class_uid %d activity_id %d type_uid %d, want %d, %d and %d\n%s",
				what, e.num("class_uid"), e.num("activity_id"), e.num("type_uid"), class, activity, class*100+activity, e.describe())
		}
		if e.num("time") < time.Now().Add(-5*time.Minute).UnixMilli() || e.str("metadata.uid") == "" {
			t.Errorf("%s: no recent time or no metadata.uid\n%s", what, e.describe())
		}
		return e
	}
	user := func(id string) func(auditEvent) bool {
		return func(e auditEvent) bool { return e.str("user.uid") == id }
	}

	t.Run("start", func(t *testing.T) {
		e := checkEvent("config.loaded", "config.loaded", 6003, 2, nil)
		if !strings.HasSuffix(e.str("unmapped.path"), "crmgate.yaml") || len(e.str("unmapped.sha256")) != 64 {
			t.Errorf("config.loaded names no file or digest\n%s", e.describe())
		}
		checkEvent("policy.reloaded", "policy.reloaded", 6003, 3, nil)
	})

	// carol signs in with a browser whose offer d.client repeats.
	b := d.browser(t, browsertest.HTTP1())
	if p := d.login(t, b, d.GatewayURL, "/api/contacts/1", "carol"); p.Status != 200 {
		t.Fatalf("carol signs in: %d at %s", p.Status, p.URL)
	}
	carol := cookieOf(t, b, d.GatewayURL)
	secrets = append(secrets, cookieValue(t, carol))

	t.Run("sign-in", func(t *testing.T) {
		e := checkEvent("auth.login.success of carol", "auth.login.success", 3002, 1, user("carol"))
		if e.num("status_id") != 1 || e.str("session.uid") == "" {
			t.Errorf("login success: status_id %d, session.uid %q; want 1 and the session's hash\n%s", e.num("status_id"), e.str("session.uid"), e.describe())
		}
	})

	t.Run("failed sign-in callback", func(t *testing.T) {
		// A wrong password stays at the IdP; what reaches the gateway is
		// a callback it did not start (login CSRF, a replay).
		res, _ := d.get(t, "/.crmgate/callback?state=forged-state-0123456789&code=forged-code")
		if res.StatusCode != 400 {
			t.Fatalf("forged callback: %d, want 400", res.StatusCode)
		}
		e := checkEvent("auth.login.failure", "auth.login.failure", 3002, 1, nil)
		if e.num("status_id") != 2 || e.num("severity_id") != 3 || e.str("unmapped.reason") == "" || e.str("src_endpoint.ip") != "127.0.0.1" {
			t.Errorf("login failure: status_id %d severity_id %d reason %q ip %q; want 2, 3, a reason and 127.0.0.1\n%s",
				e.num("status_id"), e.num("severity_id"), e.str("unmapped.reason"), e.str("src_endpoint.ip"), e.describe())
		}
	})

	t.Run("step-up request", func(t *testing.T) {
		res, _ := d.get(t, "/api/admin/users", "Cookie", carol, "Accept", "application/json")
		if res.StatusCode != 401 {
			t.Fatalf("carol's script on an admin page without a fresh second factor: %d, want 401", res.StatusCode)
		}
		checkEvent("auth.step_up.request of carol", "auth.step_up.request", 3002, 99, user("carol"))
	})

	t.Run("API keys through the admin API", func(t *testing.T) {
		res, body := d.adminDo(t, "POST", "/apikeys", `{"name":"audit-ci","scopes":["contacts:read"],"tier":"standard"}`)
		var created struct {
			Key    string `json:"key"`
			Record struct {
				ID string `json:"id"`
			} `json:"record"`
		}
		if res.StatusCode != 201 || json.Unmarshal(body, &created) != nil || created.Key == "" || created.Record.ID == "" {
			t.Fatalf("POST /apikeys: %d %s", res.StatusCode, body)
		}
		id := created.Record.ID
		// The key works, so it is a real secret worth looking for.
		waitKey(t, d, d.GatewayURL, created.Key, 200, 2*time.Second)
		res, body = d.adminDo(t, "POST", "/apikeys/"+id+"/rotate", "")
		var rotated struct {
			Key string `json:"key"`
		}
		if res.StatusCode != 200 || json.Unmarshal(body, &rotated) != nil || rotated.Key == "" {
			t.Fatalf("rotate: %d %s", res.StatusCode, body)
		}
		if res, body := d.adminDo(t, "POST", "/apikeys/"+id+"/revoke", ""); res.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", res.StatusCode, body)
		}
		secrets = append(secrets, created.Key, rotated.Key, created.Key[strings.LastIndexByte(created.Key, '_')+1:], rotated.Key[strings.LastIndexByte(rotated.Key, '_')+1:])
		byKey := func(e auditEvent) bool {
			return e.str("user.credential_uid") == id || strings.Contains(e.Raw, `"`+id+`"`)
		}
		checkEvent("apikey.created", "apikey.created", 3001, 1, byKey)
		checkEvent("apikey.rotated", "apikey.rotated", 3001, 99, byKey)
		e := checkEvent("apikey.revoked", "apikey.revoked", 3001, 5, byKey)
		if e.str("user.credential_uid") != id {
			t.Errorf("apikey.revoked: user.credential_uid = %q, want the key id %s\n%s", e.str("user.credential_uid"), id, e.describe())
		}
	})

	t.Run("session revoked through the admin API", func(t *testing.T) {
		bob := d.session(t, "bob")
		secrets = append(secrets, cookieValue(t, bob))
		if res, body := d.adminDo(t, "POST", "/sessions/revoke", `{"user":"bob"}`); res.StatusCode != 200 {
			t.Fatalf("revoke bob's sessions: %d %s", res.StatusCode, body)
		}
		checkEvent("session.revoked of bob", "session.revoked", 3002, 2, user("bob"))
		if st := d.status(t, d.GatewayURL, bob); st != 401 {
			t.Errorf("bob's revoked session: %d, want 401", st)
		}
	})

	t.Run("hijacked session", func(t *testing.T) {
		var log0 connLog
		victim := d.browser(t, victimOptions(&log0)...)
		if p := d.login(t, victim, d.GatewayURL, "/api/contacts?per_page=1", "alice"); p.Status != 200 {
			t.Fatalf("alice signs in: %d at %s", p.Status, p.URL)
		}
		secrets = append(secrets, cookieValue(t, cookieOf(t, victim, d.GatewayURL)))
		thief := stolen(t, d, victim, d.GatewayURL, append(victimOptions(&log0), browsertest.WithUserAgent(firefoxUA))...)
		if p := getJSON(thief, d.GatewayURL, "/api/contacts?per_page=1"); p.Status != 401 {
			t.Fatalf("the stolen cookie from another browser: %d, want 401", p.Status)
		}
		e := checkEvent("session.hijack_suspected of alice", "session.hijack_suspected", 3002, 99, user("alice"))
		if e.num("severity_id") != 4 || e.num("status_id") != 2 {
			t.Errorf("hijack: severity_id %d status_id %d, want 4 and 2\n%s", e.num("severity_id"), e.num("status_id"), e.describe())
		}
	})

	t.Run("logout", func(t *testing.T) {
		form := b.Get(d.GatewayURL + "/.crmgate/logout")
		if form.Status != 200 {
			t.Fatalf("logout page: %d", form.Status)
		}
		b.Submit(form, nil)
		checkEvent("auth.logout of carol", "auth.logout", 3002, 2, user("carol"))
	})

	for _, u := range d.Users {
		secrets = append(secrets, u.Password, u.TOTPSecret)
	}
	for _, k := range d.APIKeys {
		secrets = append(secrets, k.Key)
	}
	secrets = append(secrets, d.AdminToken)
	if b, err := os.ReadFile(filepath.Join(d.dir, "secrets", "oidc-client.secret")); err == nil {
		secrets = append(secrets, strings.TrimSpace(string(b)))
	} else {
		t.Errorf("the OIDC client secret: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("secret %d is too short to look for: %q", i, s)
		}
		if n := strings.Count(string(raw), s); n > 0 {
			line := ""
			for _, l := range strings.Split(string(raw), "\n") {
				if strings.Contains(l, s) {
					line = l
					break
				}
			}
			t.Errorf("the audit log holds a secret (%d times), e.g.: %s", n, tail(line, 600))
		}
	}
	t.Logf("%d events, none holding any of %d secrets", len(readAudit(t, log)), len(secrets))
}
