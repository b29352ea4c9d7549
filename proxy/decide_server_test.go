package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/opatest"
	"github.com/crmgate/crmgate/policy"
)

// remotePolicy asks the OPA server at url, within timeout.
func remotePolicy(t *testing.T, url string, timeout time.Duration) *policy.Remote {
	t.Helper()
	cfg := policy.Config{Server: &policy.ServerConfig{URL: url, Timeout: timeout}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := policy.NewRemote(cfg, policy.Options{}, policy.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// The gateway enforces an OPA server's decisions as it enforces the
// embedded engine's, and a server that cannot be asked forwards nothing.
func TestPolicyServerEnforcement(t *testing.T) {
	up := echoUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	opa := opatest.Start(t, opatest.Options{Paths: []string{dir}})
	rem := remotePolicy(t, opa.URL, 5*time.Second)
	g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: rem})

	w, e := do(g, req("GET", "/api/contacts/7", "X-CRM-Team", "forged"))
	if w.Code != 200 || e.Header.Get("X-Crm-Team") != "ops" || len(e.Header.Values("X-Crm-Team")) != 1 {
		t.Fatalf("allowed request: %d, CRM saw X-CRM-Team %q", w.Code, e.Header.Values("X-Crm-Team"))
	}
	// The policy's {"allow": "yes"}: not a boolean, a deny.
	w, e = do(g, req("GET", "/redirect"))
	checkDenied(t, w.Code, w.Body.String(), e.Path)
	g2 := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: bobSubject()}, Policy: rem})
	w, e = do(g2, req("GET", "/api/contacts/7"))
	checkDenied(t, w.Code, w.Body.String(), e.Path)

	// OPA goes away: 503, nothing forwarded, nothing about the policy
	// shown.
	opa.Stop()
	w, e = do(g, req("GET", "/api/contacts/7"))
	checkUnavailable(t, w, e.Path)
}

func checkUnavailable(t *testing.T, w *httptest.ResponseRecorder, forwardedPath string) {
	t.Helper()
	if w.Code != http.StatusServiceUnavailable || forwardedPath != "" {
		t.Fatalf("status %d, forwarded %q; want 503 and nothing forwarded", w.Code, forwardedPath)
	}
	for _, leak := range []string{"rego", "revision", "policy", "opa", "127.0.0.1"} {
		if strings.Contains(strings.ToLower(w.Body.String()), leak) {
			t.Errorf("the refusal shows internals (%q): %s", leak, w.Body.String())
		}
	}
}

// A decision server that is down, slow, or answers what is not a valid
// decision never lets a request through.
func TestPolicyServerFailsClosed(t *testing.T) {
	up := echoUpstream(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	stall := make(chan struct{})
	defer close(stall)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/slow/v1/data/crmgate/authz/decision":
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		case "/string/v1/data/crmgate/authz/decision":
			// Attack: a string "true" must not allow.
			_, _ = io.WriteString(w, `{"result": {"allow": "true"}}`)
		case "/twice/v1/data/crmgate/authz/decision":
			_, _ = io.WriteString(w, `{"result": {"allow": false, "allow": true}}`)
		case "/html/v1/data/crmgate/authz/decision":
			_, _ = io.WriteString(w, `<html>allow</html>`)
		case "/reason/v1/data/crmgate/authz/decision":
			_, _ = io.WriteString(w, `{"result": {"allow": false, "reason": "policy_unavailable"}}`)
		case "/huge/v1/data/crmgate/authz/decision":
			_, _ = io.WriteString(w, `{"result": {"allow": true, "reason": "`+strings.Repeat("x", 2<<20)+`"}}`)
		}
	}))
	defer bad.Close()
	for _, tt := range []struct {
		name, url string
		code      int
	}{
		{"down", closed, http.StatusServiceUnavailable},
		{"slow", bad.URL + "/slow", http.StatusForbidden},
		{"allow as a string", bad.URL + "/string", http.StatusForbidden},
		{"allow twice", bad.URL + "/twice", http.StatusForbidden},
		{"not JSON", bad.URL + "/html", http.StatusForbidden},
		{"huge", bad.URL + "/huge", http.StatusForbidden},
		// A policy's deny whose reason reads like an outage is a deny.
		{"reason like an outage", bad.URL + "/reason", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rem := remotePolicy(t, tt.url, 100*time.Millisecond)
			g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: rem})
			w, e := do(g, req("GET", "/api/contacts/7"))
			if tt.code == http.StatusServiceUnavailable {
				checkUnavailable(t, w, e.Path)
				return
			}
			checkDenied(t, w.Code, w.Body.String(), e.Path)
		})
	}
}
