package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/opatest"
	"github.com/crmgate/crmgate/internal/redistest"
)

// `crmgate serve` with policy.server: a real OPA server on a Unix socket
// serving the shipped policy decides as the embedded engine does; when it
// stops, requests are refused with 503 and readiness fails; when it is
// back, the gateway uses it again without a restart.
func TestShippedPolicyFromOPAServer(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t, "--redis", rs.Addr)
	opa := opatest.Start(t, opatest.Options{Paths: []string{"../policies"}, Socket: true})
	r := startReplica(t, d, func(c string) string {
		return c + fmt.Sprintf("\npolicy:\n  server:\n    url: %q\n    timeout: 2s\n", opa.URL)
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
	ready := func() (int, string) {
		t.Helper()
		res, err := http.Get(r.AdminURL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := ready(); code != 200 || !strings.Contains(body, "policy_server") {
		t.Errorf("/readyz = %d %s, want 200 naming policy_server", code, body)
	}
	metrics := d.metricsAt(t, r.AdminURL)
	for _, want := range []string{`crmgate_policy_decisions_total{mode="server",result="allow"}`, `crmgate_policy_decisions_total{mode="server",result="deny"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Log lines are buffered for up to log.flush_interval.
	logged := func(s string) bool {
		for deadline := time.Now().Add(2 * time.Second); !strings.Contains(r.out.String(), s); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				return false
			}
		}
		return true
	}
	if !logged(`"revision":"remote:unix://`) {
		t.Error("decision lines lack the server's revision")
	}

	// The server goes away: nothing is forwarded, and the load balancer
	// is told.
	opa.Stop()
	if got := at("/api/contacts/1", "Cookie", carol); got != http.StatusServiceUnavailable {
		t.Errorf("OPA stopped: %d, want 503", got)
	}
	if got := at("/api/whoami"); got != http.StatusServiceUnavailable {
		t.Errorf("OPA stopped, public route: %d, want 503", got)
	}
	if code, body := ready(); code == 200 || !strings.Contains(body, "policy_server") {
		t.Errorf("/readyz with OPA stopped = %d %s, want a failure naming policy_server", code, body)
	}
	if !logged(`"msg":"policy server failing; requests are denied until it answers"`) {
		t.Error("the outage is not logged")
	}

	// It comes back on the same socket: the gateway uses it again.
	opatest.Start(t, opatest.Options{Paths: []string{"../policies"}, URL: opa.URL})
	deadline := time.Now().Add(5 * time.Second)
	for at("/api/contacts/1", "Cookie", carol) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway did not use the restarted OPA server within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := ready(); code != 200 {
		t.Errorf("/readyz after the restart = %d", code)
	}
}
