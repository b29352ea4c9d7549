package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/redistest"
)

// The shipped CRM policy enforced by a gateway (a replica of the demo
// with a policy section), and a hot reload that refuses a broken set and
// takes a good one.
func TestShippedPolicyEnforced(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	dir := filepath.Join(t.TempDir(), "policies")
	if out, err := exec.Command("cp", "-r", "../policies", dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the policies: %v %s", err, out)
	}
	// The candidate of shadow mode lets finance read deals.
	candidate := filepath.Join(t.TempDir(), "candidate")
	if out, err := exec.Command("cp", "-r", "../policies", candidate).CombinedOutput(); err != nil {
		t.Fatalf("copying the policies: %v %s", err, out)
	}
	writeDealsGrant(t, candidate, true)
	decisions := filepath.Join(t.TempDir(), "decisions.log")
	r := startReplica(t, d, func(c string) string {
		// A generous deadline: under the race detector an evaluation is
		// many times slower than the 50 ms default allows for.
		return c + fmt.Sprintf("\npolicy:\n  dir: %q\n  debounce: 50ms\n  eval_timeout: 2s\n  shadow:\n    dir: %q\ndecision_log:\n  output: %q\n", dir, candidate, decisions)
	})
	carol, bob, alice := d.session(t, "carol"), d.session(t, "bob"), d.session(t, "alice")
	read := d.apiKey(t, "integration-read")
	at := func(path string, hdr ...string) int {
		t.Helper()
		return d.statusAt(t, r.URL+path, hdr...)
	}
	for _, tt := range []struct {
		name, path string
		hdr        []string
		want       int
	}{
		{"admin reads a contact", "/api/contacts/1", []string{"Cookie", carol}, 200},
		{"finance reads invoices", "/api/invoices", []string{"Cookie", bob}, 200},
		{"finance may not read deals", "/api/deals", []string{"Cookie", bob}, 403},
		{"sales reads their contacts redacted", "/api/contacts?per_page=1", []string{"Cookie", alice}, 200},
		{"admin pages need a recent second factor: a script is told to step up", "/api/admin/users", []string{"Cookie", carol}, 401},
		{"an API key within its scope", "/api/deals", []string{"X-API-Key", read}, 200},
		{"an API key outside its scope", "/api/invoices", []string{"X-API-Key", read}, 403},
		{"public diagnostics", "/api/whoami", nil, 200},
	} {
		if got := at(tt.path, tt.hdr...); got != tt.want {
			t.Errorf("%s: %s = %d, want %d", tt.name, tt.path, got, tt.want)
		}
	}

	// Shadow mode: the candidate would have let bob read deals; that was
	// reported, not enforced, and the revision of the set that decided is
	// in the request log.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(r.out.String(), `"msg":"policy shadow disagreement"`) {
		if time.Now().After(deadline) {
			t.Fatal("no shadow disagreement logged")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var shadowLine string
	for _, l := range strings.Split(r.out.String(), "\n") {
		if strings.Contains(l, `"msg":"policy shadow disagreement"`) {
			shadowLine = l
		}
	}
	for _, want := range []string{`"kind":"deny_to_allow"`, `"route":"deals.list"`, `"subject_kind":"user"`, `"active":{"allow":false`, `"candidate":{"allow":true`} {
		if !strings.Contains(shadowLine, want) {
			t.Errorf("shadow line lacks %s: %s", want, shadowLine)
		}
	}
	metrics := d.metricsAt(t, r.AdminURL)
	for _, want := range []string{`crmgate_policy_shadow_disagreements_total{kind="deny_to_allow"} 1`, `crmgate_policy_shadow_reload_total{result="success"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(r.out.String(), `"policy_revision":"`) {
		t.Error("request lines lack the policy revision")
	}

	// The decision log holds OPA decision log events, personal fields
	// erased.
	checkDecisionLog(t, decisions)

	// A broken edit never takes effect; the fixed one does within 2 s.
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package crmgate.authz\n\ndecision := {\"allow\": true} if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := at("/api/deals", "Cookie", bob); got != 403 {
		t.Errorf("after a broken edit: %d, want the last good set's 403", got)
	}
	rego, _ := os.ReadFile("../policies/authz.rego")
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), rego, 0o600); err != nil {
		t.Fatal(err)
	}
	writeDealsGrant(t, dir, false)
	// The shipped tests pin that finance may not read deals: a set whose
	// own tests fail never takes effect either.
	time.Sleep(time.Second)
	if got := at("/api/deals", "Cookie", bob); got != 403 {
		t.Errorf("after an edit its own tests refuse: %d, want 403", got)
	}
	// The team updates the test with the change (here: drops it).
	start := time.Now()
	if err := os.Remove(filepath.Join(dir, "authz_test.rego")); err != nil {
		t.Fatal(err)
	}
	for at("/api/deals", "Cookie", bob) != 200 {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the new policy did not take effect within 2 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("new policy in effect after %s", time.Since(start).Round(time.Millisecond))
}

// writeDealsGrant changes data.yaml in dir so that finance may read
// deals; the shipped tests refuse the change.
func writeDealsGrant(t *testing.T, dir string, dropTests bool) {
	t.Helper()
	data := filepath.Join(dir, "data.yaml")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	grant := strings.Replace(string(orig), "              - {role: sales, own: \"$.items\"}\n            api_key: {scope: \"deals:read\"}",
		"              - {role: sales, own: \"$.items\"}\n              - {role: finance}\n            api_key: {scope: \"deals:read\"}", 1)
	if grant == string(orig) {
		t.Fatal("the deals grant was not found in data.yaml")
	}
	if err := os.WriteFile(data, []byte(grant), 0o600); err != nil {
		t.Fatal(err)
	}
	if dropTests {
		// The set's own tests pin the old behaviour; a team changing
		// the grant changes them too (here: drops them).
		if err := os.Remove(filepath.Join(dir, "authz_test.rego")); err != nil {
			t.Fatal(err)
		}
	}
}

// checkDecisionLog waits for bob's refused deals read in the decision log
// at path and checks its event.
func checkDecisionLog(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		for _, l := range strings.Split(string(b), "\n") {
			if l == "" {
				continue
			}
			var ev struct {
				Labels     map[string]string `json:"labels"`
				DecisionID string            `json:"decision_id"`
				Path       string            `json:"path"`
				Input      struct {
					Subject map[string]any `json:"subject"`
					Route   struct {
						ID string `json:"id"`
					} `json:"route"`
				} `json:"input"`
				Result  map[string]any               `json:"result"`
				Bundles map[string]map[string]string `json:"bundles"`
				Erased  []string                     `json:"erased"`
				Custom  map[string]string            `json:"custom"`
				Metrics map[string]float64           `json:"metrics"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("decision log line %q: %v", l, err)
			}
			if ev.Input.Route.ID != "deals.list" || ev.Input.Subject["id"] != "bob" {
				continue
			}
			if ev.Path != "crmgate/authz/decision" || ev.DecisionID == "" || ev.Labels["id"] == "" || ev.Custom["request_id"] == "" {
				t.Errorf("event lacks OPA's fields: %s", l)
			}
			if ev.Result["allow"] != false || ev.Bundles["crmgate"]["revision"] == "" || ev.Metrics["timer_rego_query_eval_ns"] <= 0 {
				t.Errorf("event's result, revision or timing: %s", l)
			}
			if _, ok := ev.Input.Subject["email"]; ok || !slices.Contains(ev.Erased, "/input/subject/email") {
				t.Errorf("the subject's email is not erased: %s", l)
			}
			if strings.Contains(l, "bob@") {
				t.Errorf("the email leaks into the decision log: %s", l)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's deals decision not in the decision log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricsAt is the Prometheus text of the admin listener at adminURL.
func (d *demo) metricsAt(t *testing.T, adminURL string) string {
	t.Helper()
	req, err := http.NewRequest("GET", adminURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.AdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s/metrics: %d %v", adminURL, res.StatusCode, err)
	}
	return string(b)
}

// statusAt is the status of GET url with hdr.
func (d *demo) statusAt(t *testing.T, url string, hdr ...string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := d.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
