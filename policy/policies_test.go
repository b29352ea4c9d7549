package policy

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/scope"
)

// shippedDir is the folder of the policies crmgate ships.
const shippedDir = "../policies"

// The shipped policies' own Rego tests (*_test.rego) all pass, so that `go
// test ./...` and `make test` run them.
func TestShippedRegoTests(t *testing.T) {
	src, err := ReadSource(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(context.Background(), src, []string{DefaultEntrypoint})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := set.Test(context.Background(), time.Minute, WithCoverage())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", shippedDir, rep)
	// Every rule of the shipped policy has a test: every line is
	// evaluated by some test.
	for _, f := range rep.Coverage.Files() {
		for _, r := range f.Uncovered {
			t.Errorf("%s: not covered by any test", r)
		}
	}
	if !rep.OK() {
		t.Errorf("Rego tests of %s: %s", shippedDir, rep)
	}
	if rep.Passed == 0 {
		t.Errorf("%s has no passing Rego test", shippedDir)
	}
}

// demoSubjects are the demo's users and API keys, and the other kinds of
// caller.
func demoSubjects() map[string]*scope.Subject {
	fresh := testTime.Add(-time.Minute)
	stale := testTime.Add(-time.Hour)
	user := func(id, role string, amr []string, at time.Time) *scope.Subject {
		return &scope.Subject{Kind: scope.KindUser, ID: id, Email: id + "@example.com", Roles: []string{role},
			ACR: "mfa", AMR: amr, AuthTime: at, Claims: map[string]any{"preferred_username": id}}
	}
	return map[string]*scope.Subject{
		"anonymous":     nil,
		"alice":         user("alice", "sales", []string{"pwd"}, stale),
		"bob":           user("bob", "finance", []string{"pwd"}, stale),
		"carol":         user("carol", "admin", []string{"pwd"}, stale),
		"carol_mfa":     user("carol", "admin", []string{"pwd", "otp"}, fresh),
		"dave":          user("dave", "support", []string{"pwd"}, stale),
		"service":       {Kind: scope.KindService, ID: "sync", Roles: []string{"finance"}},
		"key_read":      {Kind: scope.KindAPIKey, ID: "k1", APIKey: &scope.APIKey{ID: "k1", Name: "integration-read", Scopes: []string{"contacts:read", "deals:read"}, Tier: "standard"}},
		"key_write":     {Kind: scope.KindAPIKey, ID: "k2", APIKey: &scope.APIKey{ID: "k2", Name: "integration-write", Scopes: []string{"contacts:read", "contacts:write"}, Tier: "standard"}},
		"key_bad_tier":  {Kind: scope.KindAPIKey, ID: "k3", APIKey: &scope.APIKey{ID: "k3", Scopes: []string{"contacts:read"}, Tier: "unlimited"}},
		"key_no_record": {Kind: scope.KindAPIKey, ID: "k4"},
	}
}

// demoRoutes are the demo's routes (cmd/crmgate/demo.yaml.tmpl) with a
// path each.
var demoRoutes = []struct{ id, path string }{
	{"crm.home", "/"},
	{"contacts.list", "/api/contacts"},
	{"contacts.item", "/api/contacts/42"},
	{"deals.list", "/api/deals"},
	{"invoices.list", "/api/invoices"},
	{"export.contacts", "/api/export/contacts"},
	{"admin.users", "/api/admin/users"},
	{"whoami", "/api/whoami"},
	{"echo", "/api/echo"},
	{"slow", "/api/slow"},
	{"ws", "/api/ws"},
	{"unknown", "/api/unknown"},
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

func shippedEngine(t testing.TB) *Engine {
	t.Helper()
	cfg := testConfig(shippedDir, "")
	// These tests are about decisions, not deadlines (which have tests of
	// their own): a busy machine or the race detector must not turn a
	// decision into a policy_timeout deny.
	cfg.EvalTimeout = 5 * time.Second
	return newEngine(t, cfg, Options{})
}

func demoScope(method, routeID, path string, sub *scope.Subject) *scope.Scope {
	s := reqScope(method, path, routeID, nil)
	if routeID == "contacts.item" {
		s.Params = map[string]string{"id": "42"}
	}
	s.Subject = sub
	if sub != nil && sub.Kind == scope.KindUser {
		s.Session = &scope.Session{Created: testTime.Add(-time.Hour), LastSeen: testTime.Add(-time.Minute),
			Fingerprint: scope.FingerprintCheck{Bound: true, Match: true}}
	}
	return s
}

// Every answer of the shipped policies, for every demo caller, route and
// method, is a decision of the documented schema: the policies never make
// the engine deny on their behalf.
func TestShippedDecisionsMatchSchema(t *testing.T) {
	e := shippedEngine(t)
	allowed := 0
	for name, sub := range demoSubjects() {
		for _, rt := range demoRoutes {
			for _, m := range methods {
				s := demoScope(m, rt.id, rt.path, sub)
				d := e.Decide(context.Background(), e.Input(s, httptest.NewRequest(m, rt.path, nil)), "")
				if d.Failed() {
					t.Errorf("%s %s %s: engine denied: %s: %s", name, m, rt.id, d.Reason, d.Error)
				}
				if d.Reason == "" {
					t.Errorf("%s %s %s: decision without a reason", name, m, rt.id)
				}
				if d.Allow {
					allowed++
				}
			}
		}
	}
	if allowed == 0 {
		t.Error("the shipped policies allowed nothing")
	}
}

// The demo users get what the feature promises, through the input the
// gateway builds.
func TestShippedDemoUsers(t *testing.T) {
	e := shippedEngine(t)
	subs := demoSubjects()
	ownItems := []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}
	tests := []struct {
		who, method, route, path string
		allow                    bool
		stepUp                   bool
		filter                   []Filter
		redact                   []Redaction
	}{
		{who: "alice", method: "GET", route: "contacts.list", path: "/api/contacts", allow: true, filter: ownItems,
			redact: []Redaction{{Path: "$..ssn", Action: ActionRemove}, {Path: "$..credit_card", Action: ActionMask, KeepLast: 4}}},
		{who: "alice", method: "GET", route: "invoices.list", path: "/api/invoices"},
		{who: "bob", method: "GET", route: "invoices.list", path: "/api/invoices", allow: true},
		{who: "bob", method: "GET", route: "contacts.list", path: "/api/contacts", allow: true,
			redact: []Redaction{{Path: "$..ssn", Action: ActionRemove}}},
		{who: "dave", method: "PUT", route: "contacts.item", path: "/api/contacts/42"},
		{who: "carol", method: "DELETE", route: "contacts.item", path: "/api/contacts/42", stepUp: true},
		{who: "carol_mfa", method: "DELETE", route: "contacts.item", path: "/api/contacts/42", allow: true},
		{who: "carol", method: "GET", route: "export.contacts", path: "/api/export/contacts", stepUp: true},
		{who: "key_read", method: "POST", route: "contacts.list", path: "/api/contacts"},
		{who: "key_write", method: "POST", route: "contacts.list", path: "/api/contacts", allow: true,
			redact: []Redaction{{Path: "$..ssn", Action: ActionRemove}, {Path: "$..credit_card", Action: ActionMask, KeepLast: 4}}},
		{who: "anonymous", method: "GET", route: "contacts.list", path: "/api/contacts"},
		{who: "anonymous", method: "GET", route: "whoami", path: "/api/whoami", allow: true},
	}
	for _, tt := range tests {
		t.Run(tt.who+" "+tt.method+" "+tt.route, func(t *testing.T) {
			s := demoScope(tt.method, tt.route, tt.path, subs[tt.who])
			d := e.Decide(context.Background(), e.Input(s, httptest.NewRequest(tt.method, tt.path, nil)), "")
			if d.Allow != tt.allow || (d.StepUp != nil) != tt.stepUp {
				t.Fatalf("Decide = allow %v step_up %v (%s), want allow %v step_up %v", d.Allow, d.StepUp, d.Reason, tt.allow, tt.stepUp)
			}
			if diff := cmp.Diff(d.Filter, tt.filter, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("filter (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(d.Redact, tt.redact, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("redact (-got +want):\n%s", diff)
			}
		})
	}

	// A session used by another TLS client is revoked.
	s := demoScope("GET", "contacts.list", "/api/contacts", subs["carol"])
	s.Session.Fingerprint = scope.FingerprintCheck{Bound: true, Match: false, Changed: []string{"ja4"}}
	if d := e.Decide(context.Background(), e.Input(s, httptest.NewRequest("GET", "/api/contacts", nil)), ""); d.Allow || d.SessionAction != SessionRevoke {
		t.Errorf("Decide(hijacked session) = allow %v session_action %q, want a deny with revoke", d.Allow, d.SessionAction)
	}
}
