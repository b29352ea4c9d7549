package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/policy/decisionlog"
	"github.com/crmgate/crmgate/scope"
)

// testPolicy is a small policy set exercising every way a decision is
// enforced; the shipped CRM policy is tested in package policy and end to
// end.
const testPolicy = `package crmgate.authz

default decision := {"allow": false, "reason": "no rule allows this request"}

decision := {"allow": true, "reason": "alice reads contacts", "upstream_headers": {"X-CRM-Team": "ops"}} if {
	input.route.id == "contacts.item"
	input.subject.id == "alice"
}

decision := {"allow": true, "redact": [{"path": "$..ssn", "action": "remove"}]} if input.route.id == "contacts.list"

decision := {"allow": true, "audit": {"durability": "strict", "tags": []}} if input.route.id == "office"

decision := {"allow": true, "session_action": "revoke"} if input.route.id == "intl"

decision := {"allow": "yes"} if input.route.id == "redirect"

decision := {"allow": true} if input.route.id == "csp"
`

func testEngine(t *testing.T, rego string) *policy.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := policy.Config{Dir: dir, Reload: "off", EvalTimeout: 5 * time.Second}
	cfg.Defaults()
	e, err := policy.New(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestPolicyEnforcement(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, testPolicy)
	mod := func(c *Config) {
		identityRoutes(c)
		for i := range c.Routes {
			if c.Routes[i].ID == "office" {
				c.Routes[i].AllowCIDRs = nil
			}
		}
	}
	g := testGatewayWith(t, up.URL, mod, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng})

	w, e := do(g, req("GET", "/api/contacts/7", "X-CRM-Team", "forged", "x_crm_team", "forged"))
	if w.Code != 200 || e.Header.Get("X-Crm-Team") != "ops" || len(e.Header.Values("X-Crm-Team")) != 1 {
		t.Fatalf("allowed request: %d, CRM saw X-CRM-Team %q", w.Code, e.Header.Values("X-Crm-Team"))
	}
	for k := range e.Header {
		if normName(k) == "x-crm-team" && k != "X-Crm-Team" {
			t.Errorf("client spelling %s reached the CRM", k)
		}
	}

	for name, target := range map[string]string{
		"policy denies":                       "/api/office?x=1",
		"decision needs a strict audit write": "/api/office",
		"decision needs a session action":     "/api/names/x",
		"decision does not match the schema":  "/redirect",
	} {
		t.Run(name, func(t *testing.T) {
			if name == "policy denies" {
				// bob is denied the route alice may read.
				g2 := testGatewayWith(t, up.URL, mod, Deps{Auth: &fakeAuth{sub: bobSubject()}, Policy: eng})
				w, e := do(g2, req("GET", "/api/contacts/7"))
				checkDenied(t, w.Code, w.Body.String(), e.Path)
				return
			}
			w, e := do(g, req("GET", target))
			checkDenied(t, w.Code, w.Body.String(), e.Path)
		})
	}

	// A set without the rule the routes name denies everything.
	g3 := testGatewayWith(t, up.URL, func(c *Config) {
		mod(c)
		for i := range c.Routes {
			c.Routes[i].Policy = "data.crmgate.other.decision"
		}
	}, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng})
	w, e = do(g3, req("GET", "/api/contacts/7"))
	checkDenied(t, w.Code, w.Body.String(), e.Path)
}

func bobSubject() *scope.Subject {
	return &scope.Subject{Kind: scope.KindUser, ID: "bob", Roles: []string{"finance"}}
}

func checkDenied(t *testing.T, code int, body, forwardedPath string) {
	t.Helper()
	if code != 403 || forwardedPath != "" {
		t.Fatalf("status %d, forwarded %q; want 403 and nothing forwarded", code, forwardedPath)
	}
	for _, leak := range []string{"rego", "revision", "policy", "redact", "audit"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("the refusal shows internals (%q): %s", leak, body)
		}
	}
}

// recordingShadow keeps what the gateway hands to shadow mode.
type recordingShadow struct {
	mu    sync.Mutex
	calls []shadowCall
}

type shadowCall struct {
	in         *policy.Input
	entrypoint string
	active     policy.Decision
}

func (r *recordingShadow) Compare(in *policy.Input, entrypoint string, active policy.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, shadowCall{in, entrypoint, active})
}

// recordingDecisionLog keeps the decision log's entries.
type recordingDecisionLog struct{ entries []decisionlog.Entry }

func (r *recordingDecisionLog) Log(e decisionlog.Entry) { r.entries = append(r.entries, e) }

func TestPolicyShadowDecisionLogAndRevision(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, testPolicy)
	var logs bytes.Buffer
	sh := &recordingShadow{}
	dl := &recordingDecisionLog{}
	g := testGatewayWith(t, up.URL, identityRoutes, Deps{
		Auth: &fakeAuth{sub: alice()}, Policy: eng, Shadow: sh, DecisionLog: dl,
		Log: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if w, _ := do(g, req("GET", "/api/contacts/7")); w.Code != 200 {
		t.Fatalf("allowed: %d", w.Code)
	}
	if w, _ := do(g, req("GET", "/api/contacts")); w.Code != 200 {
		t.Fatalf("allowed, redacted: %d", w.Code)
	}
	if len(sh.calls) != 2 {
		t.Fatalf("shadow saw %d decisions, want 2", len(sh.calls))
	}
	// The shadow sees the input the policy decided and the policy's own
	// answer, before the gateway's stage checks.
	c := sh.calls[1]
	if c.in.Route.ID != "contacts.list" || c.in.Subject.ID != "alice" || !c.active.Allow || c.active.Revision != eng.Revision() {
		t.Errorf("shadow call = route %q subject %q decision %+v", c.in.Route.ID, c.in.Subject.ID, c.active)
	}
	// The decision log gets the same input and decision, with the
	// request id.
	if len(dl.entries) != 2 || dl.entries[1].Input != c.in || dl.entries[1].Decision.Revision != eng.Revision() || dl.entries[1].RequestID == "" {
		t.Errorf("decision log entries = %+v", dl.entries)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d request lines", len(lines))
	}
	for _, l := range lines {
		if l["policy_revision"] != eng.Revision() {
			t.Errorf("request line without the policy revision: %v", l)
		}
	}
}

// BenchmarkPolicyPipeline is BenchmarkIdentifiedPipeline's identified
// request with the shipped CRM policy deciding it (alice, sales, reads a
// 2 KB contact of hers; the decision carries the sales view's redactions
// and owner filter, applied to the response), against the
// same route without a policy stage, in the same run.
func BenchmarkPolicyPipeline(b *testing.B) {
	rec := record2KB("alice")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, rec)
	}))
	b.Cleanup(up.Close)
	cfg := policy.Config{Dir: "../policies", Reload: "off", EvalTimeout: 5 * time.Second}
	cfg.Defaults()
	eng, err := policy.New(cfg, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := eng.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		policy *policy.Engine
	}{{"no_policy", nil}, {"shipped_policy", eng}} {
		b.Run(bc.name, func(b *testing.B) {
			c := Config{
				Upstreams: map[string]UpstreamConfig{"crm": {URL: up.URL}},
				Routes:    []RouteConfig{{ID: "contacts.item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: AuthRequired, Tags: []string{"pii"}}},
			}
			c.Defaults()
			d := Deps{Auth: &fakeAuth{sub: &scope.Subject{Kind: scope.KindUser, ID: "alice", Roles: []string{"sales"}}}}
			if bc.policy != nil {
				d.Policy = bc.policy
			}
			g, err := New(c, d)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := req("GET", "/api/contacts/42", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36", "Accept", "application/json", "Accept-Language", "en-US,en;q=0.9")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}
