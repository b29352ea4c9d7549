package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/redistest"
)

// replica is a second `crmgate serve` on the demo's configuration with
// its own ports, sharing the demo's Redis.
type replica struct {
	URL, AdminURL string
	stop          func()
	// out is what the gateway wrote to stdout and stderr: its logs.
	out *lockedBuffer
}

var (
	listenHTTPS = regexp.MustCompile(`(?m)^  https: "[^"]*"$`)
	listenAdmin = regexp.MustCompile(`(?m)^  listen: "[^"]*"$`)
	sessionKeys = regexp.MustCompile(`(?m)^  keys: \["file:[^"]*session\.key"\]$`)
	auditSpool  = regexp.MustCompile(`(?m)^    dir: "[^"]*/audit/spool"$`)
	auditPath   = regexp.MustCompile(`(?m)^    path: "[^"]*/audit/audit\.log"$`)
)

// startReplica runs `crmgate serve -c` on d's configuration, moved to
// free ports and changed by edit (nil for none), and waits until it is
// ready.
func startReplica(t *testing.T, d *demo, edit func(string) string) *replica {
	t.Helper()
	b, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	https, adm := freePort(t), freePort(t)
	cfg := listenHTTPS.ReplaceAllString(string(b), fmt.Sprintf(`  https: "127.0.0.1:%d"`, https))
	cfg = listenAdmin.ReplaceAllString(cfg, fmt.Sprintf(`  listen: "127.0.0.1:%d"`, adm))
	// Each gateway keeps its own audit log and spool (they are locked).
	own := t.TempDir()
	cfg = auditSpool.ReplaceAllString(cfg, fmt.Sprintf(`    dir: %q`, filepath.Join(own, "spool")))
	cfg = auditPath.ReplaceAllString(cfg, fmt.Sprintf(`    path: %q`, filepath.Join(own, "audit.log")))
	if edit != nil {
		cfg = edit(cfg)
	}
	path := filepath.Join(t.TempDir(), "replica.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "replica", "serve", "-c", path)
	out, stop := p.out, p.stop
	r := &replica{URL: fmt.Sprintf("https://localhost:%d", https), AdminURL: fmt.Sprintf("http://127.0.0.1:%d", adm), stop: stop, out: out}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(r.AdminURL + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return r
			}
		}
		select {
		case <-p.done:
			t.Fatalf("replica exited: %v\n%s", p.err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not ready after 30s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// status is the status of GET /api/contacts/1 at base with cookie.
func (d *demo) status(t *testing.T, base, cookie string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/contacts/1", nil)
	req.Header.Set("Cookie", cookie)
	res, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Two gateways share sessions through a real redis-server: a login on
// one is a session on the other, and a revocation on one is seen by the
// other within a second.
func TestReplicasShareSessions(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	r2 := startReplica(t, d, nil)

	// The login starts at the replica and completes at the demo gateway
	// (the registered redirect URI); cookies are per host, not per port.
	b := d.browser(t)
	if p := d.login(t, b, r2.URL, "/api/contacts/1", "alice"); p.Status != 200 {
		t.Fatalf("login: %d at %s", p.Status, p.URL)
	}
	cookie := cookieOf(t, b, d.GatewayURL)
	for _, base := range []string{d.GatewayURL, r2.URL} {
		if st := d.status(t, base, cookie); st != 200 {
			t.Fatalf("%s: %d with the session", base, st)
		}
	}

	var worst time.Duration
	for i := range 3 {
		c := cookie
		if i > 0 {
			b := d.browser(t)
			d.login(t, b, d.GatewayURL, "/api/contacts/1", "alice")
			c = cookieOf(t, b, d.GatewayURL)
		}
		if st := d.status(t, r2.URL, c); st != 200 {
			t.Fatalf("replica: %d before the revocation", st)
		}
		start := time.Now()
		res, body := d.adminDo(t, "POST", "/sessions/revoke", `{"user":"alice"}`)
		if res.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", res.StatusCode, body)
		}
		waitStatus(t, r2.URL, d, c, 401, time.Second)
		worst = max(worst, time.Since(start))
	}
	t.Logf("revocation on one replica seen by the other after at most %s", worst)

	// Redis down: requests with a session fail closed with 503, on both.
	bob := d.session(t, "bob")
	rs.Stop()
	for _, base := range []string{d.GatewayURL, r2.URL} {
		if st := d.status(t, base, bob); st != 503 {
			t.Errorf("%s with Redis down: %d, want 503", base, st)
		}
	}
	if res, _ := d.get(t, "/api/whoami"); res.StatusCode != 503 && res.StatusCode != 200 {
		t.Errorf("anonymous whoami with Redis down: %d", res.StatusCode)
	}
}

// Idle and absolute timeouts, enforced by a replica configured with short
// ones on sessions the other wrote.
func TestSessionExpiry(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	short := startReplica(t, d, func(c string) string {
		return strings.Replace(c, "\nsession:\n", "\nsession:\n  idle_timeout: 2s\n  absolute_timeout: 5s\n", 1)
	})

	t.Run("idle", func(t *testing.T) {
		c := d.session(t, "alice")
		if st := d.status(t, short.URL, c); st != 200 {
			t.Fatalf("fresh session: %d", st)
		}
		time.Sleep(2200 * time.Millisecond)
		if st := d.status(t, short.URL, c); st != 401 {
			t.Errorf("after 2.2s idle: %d, want 401", st)
		}
	})

	t.Run("absolute", func(t *testing.T) {
		b := d.browser(t)
		start := time.Now()
		d.login(t, b, d.GatewayURL, "/api/contacts/1", "bob")
		c := cookieOf(t, b, d.GatewayURL)
		for time.Since(start) < 4500*time.Millisecond {
			if st := d.status(t, short.URL, c); st != 200 {
				t.Fatalf("active session %s after login: %d", time.Since(start), st)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// The absolute timeout counts from the session's creation, which
		// the admin API reports (the login itself takes a moment).
		_, body := d.adminGet(t, "/sessions?user=bob")
		var list struct {
			Sessions []struct {
				Created time.Time `json:"created"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list.Sessions) != 1 {
			t.Fatalf("sessions of bob: %s (%v)", body, err)
		}
		time.Sleep(time.Until(list.Sessions[0].Created.Add(5200 * time.Millisecond)))
		if st := d.status(t, short.URL, c); st != 401 {
			t.Errorf("active session after the absolute timeout: %d, want 401", st)
		}
	})
}

// Rotating the session key ring keeps sessions sealed under the old key;
// removing the old key ends them.
func TestSessionKeyRotation(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	c := d.session(t, "carol")

	newKey := filepath.Join(t.TempDir(), "session-new.key")
	k := make([]byte, 48)
	_, _ = rand.Read(k)
	if err := os.WriteFile(newKey, []byte(base64.StdEncoding.EncodeToString(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	oldKey := filepath.Join(filepath.Dir(d.Config), "secrets", "session.key")
	rotated := startReplica(t, d, func(cfg string) string {
		return sessionKeys.ReplaceAllString(cfg, fmt.Sprintf(`  keys: ["file:%s", "file:%s"]`, newKey, oldKey))
	})
	if st := d.status(t, rotated.URL, c); st != 200 {
		t.Errorf("session of the old key on the rotated replica: %d, want 200", st)
	}
	rotated.stop()

	retired := startReplica(t, d, func(cfg string) string {
		return sessionKeys.ReplaceAllString(cfg, fmt.Sprintf(`  keys: ["file:%s"]`, newKey))
	})
	if st := d.status(t, retired.URL, c); st != 401 {
		t.Errorf("session of a removed key: %d, want 401", st)
	}
}
