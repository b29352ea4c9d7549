package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/redistest"
)

// carol, an admin signed in with her password, deletes a contact: the
// shipped policy asks for a second factor used within 5 minutes. The
// browser goes through the dev IdP's TOTP prompt (a wrong code first,
// refused there) and comes back to a page that asks her to repeat the
// action, which was not replayed; repeated, it goes through, until the
// second factor is older than the policy's max_age_s (shortened to 4 s
// here). A script is told where to step up, never redirected away.
func TestStepUpEndToEnd(t *testing.T) {
	// The replica shares the demo's sessions through Redis: the
	// provider sends every sign-in back to the demo gateway's callback
	// (its external URL), and the session serves both.
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	dir := filepath.Join(t.TempDir(), "policies")
	if out, err := exec.Command("cp", "-r", "../policies", dir).CombinedOutput(); err != nil {
		t.Fatalf("copying the policies: %v %s", err, out)
	}
	// Freshness of 4 s instead of 5 minutes, so that its expiry can be
	// seen.
	data := filepath.Join(dir, "data.yaml")
	b0, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(b0), "max_age_s: 300", "max_age_s: 4", 1)
	if short == string(b0) {
		t.Fatal("max_age_s: 300 not found in data.yaml")
	}
	if err := os.WriteFile(data, []byte(short), 0o600); err != nil {
		t.Fatal(err)
	}
	// The set's own tests pin the 5 minutes.
	if err := os.Remove(filepath.Join(dir, "authz_test.rego")); err != nil {
		t.Fatal(err)
	}
	r := startReplica(t, d, func(c string) string {
		return c + fmt.Sprintf("\npolicy:\n  dir: %q\n  eval_timeout: 2s\n", dir)
	})
	b := d.browser(t)
	if p := d.login(t, b, r.URL, "/api/contacts/9", "carol"); p.Status != http.StatusOK {
		t.Fatalf("carol reads a contact: %d %s", p.Status, p.Body)
	}
	idp, _ := url.Parse(d.IdPURL)

	// A script's DELETE: 401 and a same-origin link, nothing deleted.
	del := func(accept string) browsertest.Page {
		req, _ := http.NewRequest(http.MethodDelete, r.URL+"/api/contacts/9", nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("Origin", r.URL)
		req.Header.Set("Referer", r.URL+"/api/contacts/9")
		return b.Do(req)
	}
	p := del("application/json")
	var prob struct {
		ACR       string `json:"acr_values"`
		MaxAge    int    `json:"max_age"`
		StepUpURL string `json:"step_up_url"`
	}
	if p.Status != http.StatusUnauthorized || json.Unmarshal([]byte(p.Body), &prob) != nil || prob.ACR != "mfa" || prob.MaxAge != 4 || !strings.HasPrefix(prob.StepUpURL, "/.crmgate/step-up?") {
		t.Fatalf("script DELETE: %d %s", p.Status, p.Body)
	}

	// The browser's DELETE leads to the provider, which asks for the
	// password again (prompt=login), then for the TOTP code.
	p = del("text/html")
	if p.URL.Host != idp.Host || p.URL.Path != "/login" {
		t.Fatalf("browser DELETE did not lead to the IdP's login: %d at %s", p.Status, p.URL)
	}
	password, totp := d.user(t, "carol")
	p = b.Submit(p, map[string]string{"username": "carol", "password": password})
	if p.URL.Path != "/login/otp" {
		t.Fatalf("no TOTP prompt: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 400))
	}
	wrong := b.Submit(p, map[string]string{"otp": "000000"})
	if wrong.URL.Host != idp.Host || strings.Contains(wrong.URL.Path, "callback") {
		t.Fatalf("a wrong code left the IdP: %d at %s", wrong.Status, wrong.URL)
	}
	if p := del("application/json"); p.Status != http.StatusUnauthorized {
		t.Fatalf("after a wrong code the DELETE got %d, want 401", p.Status)
	}
	if wrong.URL.Path != "/login/otp" {
		t.Fatalf("after a wrong code: %d at %s, want the TOTP form again", wrong.Status, wrong.URL)
	}
	p = b.Submit(wrong, map[string]string{"otp": browsertest.TOTP(t, totp)})
	if p.Status != http.StatusOK || p.URL.Path != "/.crmgate/step-up/done" || !strings.Contains(p.Body, "Verification complete") {
		t.Fatalf("after the step-up: %d at %s\n%s", p.Status, p.URL, tail(p.Body, 400))
	}
	// Not replayed: the contact is still there.
	if p := b.Get(r.URL + "/api/contacts/9"); p.Status != http.StatusOK {
		t.Fatalf("the contact is gone before the DELETE was repeated: %d", p.Status)
	}
	// Repeated, it goes through; the CRM deleted it.
	stepped := time.Now()
	if p := del("application/json"); p.Status != http.StatusNoContent {
		t.Fatalf("the repeated DELETE: %d %s", p.Status, p.Body)
	}
	if p := b.Get(r.URL + "/api/contacts/9"); p.Status != http.StatusNotFound {
		t.Errorf("after the DELETE the contact answers %d", p.Status)
	}
	// Once the second factor is older than max_age_s, the next delete
	// asks again.
	time.Sleep(time.Until(stepped.Add(5 * time.Second)))
	req, _ := http.NewRequest(http.MethodDelete, r.URL+"/api/contacts/8", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", r.URL)
	if p := b.Do(req); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "step_up_url") {
		t.Errorf("a delete after the second factor expired: %d %s", p.Status, p.Body)
	}
	// Logs are flushed within 100 ms.
	time.Sleep(300 * time.Millisecond)
	if !strings.Contains(r.out.String(), `auth.step_up.request"`) {
		t.Error("no step-up request event in the replica's log")
	}
	if b, err := os.ReadFile(d.Log); err != nil || !strings.Contains(string(b), `auth.step_up.success"`) {
		t.Errorf("no step-up success event in the demo gateway's log (%v)", err)
	}
}
