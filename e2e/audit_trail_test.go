package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// The shipped alert rules fire on what they watch: 20 policy denials of
// one subject within a minute (repeated-denials), 10 failed sign-in
// callbacks from one address (failed-login-burst). Each alert is an event
// of its own, once per cooldown, naming the rule, the key and requests
// that counted.
func TestAuditAlerts(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	log := d.auditFiles(t).Log
	alertOf := func(rule string) func(auditEvent) bool {
		return func(e auditEvent) bool { return e.typ() == "alert" && e.str("unmapped.rule") == rule }
	}

	t.Run("repeated-denials", func(t *testing.T) {
		bob := d.session(t, "bob")
		var denied []string
		for i := range 19 {
			res, _ := d.get(t, "/api/deals", "Cookie", bob)
			if res.StatusCode != 403 {
				t.Fatalf("bob's deals read %d: %d, want 403", i, res.StatusCode)
			}
			denied = append(denied, res.Header.Get("X-Request-Id"))
		}
		time.Sleep(300 * time.Millisecond)
		if got := filterAudit(readAudit(t, log), alertOf("repeated-denials")); len(got) != 0 {
			t.Fatalf("repeated-denials fired after 19 denials (threshold 20):\n%s", got[0].describe())
		}
		for range 6 {
			res, _ := d.get(t, "/api/deals", "Cookie", bob)
			denied = append(denied, res.Header.Get("X-Request-Id"))
		}
		e := waitAudit(t, log, "alert of rule repeated-denials", alertOf("repeated-denials"))[0]
		if e.str("unmapped.key") != "bob" || e.str("unmapped.key_kind") != "subject" || e.num("unmapped.threshold") != 20 || e.num("unmapped.value") != 20 {
			t.Errorf("repeated-denials: key %q (%s), value %d of threshold %d; want bob (subject), 20 of 20\n%s",
				e.str("unmapped.key"), e.str("unmapped.key_kind"), e.num("unmapped.value"), e.num("unmapped.threshold"), e.describe())
		}
		if e.num("class_uid") != 6003 || e.num("activity_id") != 99 || e.num("severity_id") != 3 {
			t.Errorf("repeated-denials: class %d activity %d severity %d, want API Activity 6003, 99 and medium (3)\n%s",
				e.num("class_uid"), e.num("activity_id"), e.num("severity_id"), e.describe())
		}
		samples, _ := e.get("unmapped.sample_request_ids").([]any)
		if len(samples) == 0 {
			t.Errorf("repeated-denials lists no sample request ids\n%s", e.describe())
		}
		for _, s := range samples {
			if !slices.Contains(denied[:20], fmt.Sprint(s)) {
				t.Errorf("repeated-denials sample %v is not one of the first 20 denied requests", s)
			}
		}
		time.Sleep(300 * time.Millisecond)
		if got := filterAudit(readAudit(t, log), alertOf("repeated-denials")); len(got) != 1 {
			t.Errorf("25 denials within the 10 m cooldown: %d repeated-denials alerts, want 1", len(got))
		}
	})

	t.Run("failed-login-burst", func(t *testing.T) {
		for i := range 10 {
			res, _ := d.get(t, fmt.Sprintf("/.crmgate/callback?state=forged-state-%02d-0123456789&code=x", i))
			if res.StatusCode != 400 {
				t.Fatalf("forged callback %d: %d, want 400", i, res.StatusCode)
			}
		}
		e := waitAudit(t, log, "alert of rule failed-login-burst", alertOf("failed-login-burst"))[0]
		if e.str("unmapped.key") != "127.0.0.1" || e.str("unmapped.key_kind") != "ip" || e.str("src_endpoint.ip") != "127.0.0.1" {
			t.Errorf("failed-login-burst: key %q (%s), src_endpoint.ip %q; want the address 127.0.0.1\n%s",
				e.str("unmapped.key"), e.str("unmapped.key_kind"), e.str("src_endpoint.ip"), e.describe())
		}
		if n := len(filterAudit(readAudit(t, log), ofType("auth.login.failure"))); n != 10 {
			t.Errorf("%d auth.login.failure events, want 10", n)
		}
	})

	if m := d.metricsAt(t, d.AdminURL); metricValue(m, `crmgate_audit_alerts_fired_total{rule="repeated-denials"}`) != 1 ||
		metricValue(m, `crmgate_audit_alerts_fired_total{rule="failed-login-burst"}`) != 1 {
		t.Errorf("alert metrics:\n%s", grepLines(m, "crmgate_audit_alerts_fired_total"))
	}
}

// The audit log of a demo that stopped verifies with its public key;
// changing a status code in one line, deleting a line or swapping two
// lines is caught by crmgate audit verify, which names the problem and
// the line.
func TestAuditVerifyTamper(t *testing.T) {
	d := startDemo(t)
	files := d.auditFiles(t)
	var last string
	for i := range 10 {
		res, _ := d.get(t, fmt.Sprintf("/api/whoami?n=%d", i))
		if res.StatusCode != 200 {
			t.Fatalf("whoami %d: %d", i, res.StatusCode)
		}
		last = res.Header.Get("X-Request-Id")
	}
	waitAudit(t, files.Log, "for the last whoami", requestEvent(last))
	d.proc.stop()
	if d.proc.err != nil {
		t.Fatalf("the demo did not exit cleanly on SIGINT: %v", d.proc.err)
	}

	verify := func(path string) (string, int) {
		t.Helper()
		return runCrmgate(t, nil, "audit", "verify", "--key", files.PublicKey, path)
	}
	out, code := verify(files.Log)
	if code != 0 || !strings.Contains(out, "OK: the chain is intact") {
		t.Fatalf("verify of the untouched log: exit %d, want 0:\n%s", code, out)
	}
	t.Logf("untouched: %s", strings.TrimSpace(out))

	orig, err := os.ReadFile(files.Log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	// An event line in the middle with status 200, followed by another
	// event line: not the first, not a checkpoint.
	k := -1
	for i := 2; i < len(lines)-2; i++ {
		if strings.Contains(lines[i], `"code":200`) && !strings.Contains(lines[i+1], `"checkpoint"`) {
			k = i
			break
		}
	}
	if k < 0 {
		t.Fatalf("no event line with status 200 in the middle of the log:\n%s", orig)
	}
	line := k + 1 // 1-based
	for _, tc := range []struct {
		name   string
		edit   func([]string) []string
		kind   string
		atLine int
	}{
		{"a status code changed", func(l []string) []string {
			l[k] = strings.Replace(l[k], `"code":200`, `"code":201`, 1)
			return l
		}, "edited", line},
		{"a line deleted", func(l []string) []string { return slices.Delete(l, k, k+1) }, "deleted", line},
		{"two lines swapped", func(l []string) []string {
			l[k], l[k+1] = l[k+1], l[k]
			return l
		}, "reordered", line},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			tampered := strings.Join(tc.edit(slices.Clone(lines)), "")
			if err := os.WriteFile(path, []byte(tampered), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := verify(path)
			want := fmt.Sprintf("BROKEN: %s:%d: %s (seq ", path, tc.atLine, tc.kind)
			if code != 1 || !strings.Contains(out, want) {
				t.Errorf("verify: exit %d, want 1 and %q in:\n%s", code, want, out)
			}
		})
	}
}

// A request on a strict route (the decision's audit.durability strict:
// the export and admin routes of the shipped policy) is answered only once
// its event is fsynced: when the response headers arrive, the event is in
// the audit file already, marked recorded at the response's start.
func TestAuditStrictRouteDurable(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	log := d.auditFiles(t).Log
	b := d.browser(t, browsertest.HTTP1())
	if p := d.login(t, b, d.GatewayURL, "/api/contacts/1", "carol"); p.Status != 200 {
		t.Fatalf("carol signs in: %d at %s", p.Status, p.URL)
	}
	cookie := cookieOf(t, b, d.GatewayURL)

	// headersThenLog sends GET path and, as soon as the response headers
	// are in, reads the audit file, before reading the body.
	headersThenLog := func(path, cookie string) (*http.Response, []auditEvent) {
		t.Helper()
		req, _ := http.NewRequest("GET", d.GatewayURL+path, nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("Accept", "application/json")
		res, err := d.client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		evs := readAudit(t, log)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res, evs
	}
	check := func(what string, res *http.Response, evs []auditEvent, want int) {
		t.Helper()
		rid := res.Header.Get("X-Request-Id")
		if res.StatusCode != want {
			t.Fatalf("%s: %d, want %d", what, res.StatusCode, want)
		}
		got := filterAudit(evs, requestEvent(rid))
		if len(got) != 1 {
			t.Fatalf("%s (request %s): %d events in the audit file when the response headers arrived, want 1 (strict: written before the answer)", what, rid, len(got))
		}
		if got[0].str("unmapped.recorded_at") != "response_start" || got[0].num("http_response.code") != int64(want) {
			t.Errorf("%s: recorded_at %q, code %d; want response_start and %d\n%s", what, got[0].str("unmapped.recorded_at"), got[0].num("http_response.code"), want, got[0].describe())
		}
	}
	fsyncs := func() float64 {
		return metricValue(d.metricsAt(t, d.AdminURL), `crmgate_audit_fsyncs_total{target="file"}`)
	}
	before := fsyncs()

	// Without a recent second factor the admin route asks for a step-up:
	// the refusal is decided under the route's strict audit too.
	res, evs := headersThenLog("/api/admin/users", cookie)
	check("carol's admin read without a second factor", res, evs, 401)

	// Step up: the browser goes through the IdP's password and TOTP.
	req, _ := http.NewRequest("GET", d.GatewayURL+"/api/export/contacts?count=5", nil)
	req.Header.Set("Accept", "text/html")
	p := b.Do(req)
	if p.URL.Path != "/login" {
		t.Fatalf("the export in a browser did not lead to the IdP's sign-in: %d at %s", p.Status, p.URL)
	}
	password, totp := d.user(t, "carol")
	p = b.Submit(p, map[string]string{"username": "carol", "password": password})
	if p.URL.Path == "/login/otp" {
		p = b.Submit(p, map[string]string{"otp": browsertest.TOTP(t, totp)})
	}
	// A GET comes back to the page itself; other methods to a page that
	// asks to repeat them.
	if p.Status != 200 || (p.URL.Path != "/api/export/contacts" && p.URL.Path != "/.crmgate/step-up/done") {
		t.Fatalf("after the step-up: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 400))
	}
	cookie = cookieOf(t, b, d.GatewayURL)

	for i := range 5 {
		res, evs := headersThenLog("/api/export/contacts?count=5", cookie)
		check(fmt.Sprintf("export %d", i), res, evs, 200)
		res, evs = headersThenLog("/api/admin/users", cookie)
		check(fmt.Sprintf("admin read %d", i), res, evs, 200)
	}
	if after := fsyncs(); after < before+11 {
		t.Errorf("crmgate_audit_fsyncs_total{target=\"file\"} went from %v to %v over 11 strict requests answered one after another", before, after)
	}
}
