package policy

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/internal/opatest"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// These tests ask a real `opa run --server` of the version crmgate
// embeds (internal/opatest builds it once).

// sameDecision compares what the policy decided, leaving out what differs
// by mode: the revision, the time, the server's decision id, and the
// embedded engine's reuse of a decision and memo of its compiled parts.
var sameDecision = cmpopts.IgnoreFields(Decision{}, "Revision", "Elapsed", "DecisionID", "Reused", "Memo")

// The shipped policy served by an OPA server decides every demo caller,
// route and method exactly as the embedded engine does: allows, denies,
// redactions, row filters, step-ups and session actions, field by field.
func TestRemoteShippedMatchesEmbedded(t *testing.T) {
	emb := shippedEngine(t)
	srv := opatest.Start(t, opatest.Options{Paths: []string{shippedDir}})
	rem := newRemote(t, srv.URL, nil, Options{})

	type tally struct{ allow, deny, redact, filter, stepUp, revoke int }
	var n tally
	check := func(t *testing.T, name string, s *scope.Scope, path string) {
		t.Helper()
		req := httptest.NewRequest(s.Method, "https://crm.example.com"+path, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0")
		req.Header.Set("Accept-Language", "en-GB")
		want := emb.Decide(context.Background(), emb.Input(s, req), "")
		got := rem.Decide(context.Background(), rem.Input(s, req), "")
		if want.Failed() {
			t.Fatalf("%s: embedded engine failed: %s: %s", name, want.Reason, want.Error)
		}
		if diff := cmp.Diff(got, want, sameDecision); diff != "" {
			t.Errorf("%s: server decision differs (-server +embedded):\n%s", name, diff)
		}
		if !strings.HasPrefix(got.Revision, RevisionRemotePrefix) {
			t.Errorf("%s: revision %q", name, got.Revision)
		}
		switch {
		case want.Allow:
			n.allow++
		default:
			n.deny++
		}
		if len(want.Redact) > 0 {
			n.redact++
		}
		if len(want.Filter) > 0 {
			n.filter++
		}
		if want.StepUp != nil {
			n.stepUp++
		}
		if want.SessionAction == SessionRevoke {
			n.revoke++
		}
	}
	for name, sub := range demoSubjects() {
		for _, rt := range demoRoutes {
			for _, m := range methods {
				check(t, name+" "+m+" "+rt.id, demoScope(m, rt.id, rt.path, sub), rt.path)
			}
		}
	}
	// A session used by another TLS client: revoked.
	s := demoScope("GET", "contacts.list", "/api/contacts", demoSubjects()["carol"])
	s.Session.Fingerprint = scope.FingerprintCheck{Bound: true, Match: false, Changed: []string{"ja4"}}
	check(t, "hijacked session", s, "/api/contacts")
	t.Logf("%+v", n)
	if n.allow == 0 || n.deny == 0 || n.redact == 0 || n.filter == 0 || n.stepUp == 0 || n.revoke == 0 {
		t.Errorf("the comparison misses a kind of decision: %+v", n)
	}
}

// The same over a Unix socket, with the token OPA's token authentication
// checks: without it the server refuses (policy_unavailable), with it
// the decision is the embedded one.
func TestRemoteSocketAndToken(t *testing.T) {
	const token = "opa-Zq8vX2kL9mR4tW7bN1cH6yJ3dP5s"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"authz.rego": `package system.authz

default allow := false

allow if input.identity == "` + token + `"

allow if input.path == ["health"]
`})
	emb := shippedEngine(t)
	srv := opatest.Start(t, opatest.Options{
		Paths:  []string{shippedDir, filepath.Join(dir, "authz.rego")},
		Socket: true,
		Args:   []string{"--authentication=token", "--authorization=basic"},
	})
	s := demoScope("GET", "contacts.list", "/api/contacts", demoSubjects()["alice"])
	req := httptest.NewRequest("GET", "/api/contacts", nil)

	without := newRemote(t, srv.URL, nil, Options{})
	if d := without.Decide(context.Background(), without.Input(s, req), ""); d.Allow || d.Reason != ReasonUnavailable || !strings.Contains(d.Error, "401") {
		t.Errorf("without token: allow %v reason %q error %q, want policy_unavailable (401)", d.Allow, d.Reason, d.Error)
	}
	with := newRemote(t, srv.URL, func(c *Config) { c.Server.BearerToken = secret.FromValue([]byte(token)) }, Options{})
	got := with.Decide(context.Background(), with.Input(s, req), "")
	want := emb.Decide(context.Background(), emb.Input(s, req), "")
	if diff := cmp.Diff(got, want, sameDecision); diff != "" || !got.Allow {
		t.Errorf("with token (-server +embedded):\n%s", diff)
	}
}

// Where the policy itself fails, the server's deny has the embedded
// engine's reason: undefined, a conflict, a built-in error (strict, as
// embedded), an answer outside the schema, a "true" that is a string.
func TestRemotePolicyFailuresMatchEmbedded(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"p.rego": `package t

decision := {"allow": true, "reason": "ok"} if input.route.id == "ok"

decision := {"allow": true} if input.route.id == "conflict"

decision := {"allow": false} if input.route.id == "conflict"

decision := {"allow": to_number(input.request.headers["user-agent"]) > 0} if input.route.id == "builtin"

decision := {"allow": "true"} if input.route.id == "string"

decision := {"allow": true, "redacts": []} if input.route.id == "misspelt"

decision := {"allow": true, "step_up": {"acr": "mfa"}} if input.route.id == "stepup_on_allow"

decision := {"allow": true, "redact": [{"path": "ssn", "action": "remove"}]} if input.route.id == "bad_path"
`})
	const ep = "data.t.decision"
	cfg := testConfig(dir, ep)
	cfg.EvalTimeout = 5 * time.Second
	emb := newEngine(t, cfg, Options{})
	srv := opatest.Start(t, opatest.Options{Paths: []string{dir}})
	rem := newRemote(t, srv.URL, func(c *Config) { c.Entrypoint = ep }, Options{})
	for route, reason := range map[string]string{
		"ok":              "",
		"undefined":       ReasonUndefined,
		"conflict":        ReasonError,
		"builtin":         ReasonError,
		"string":          ReasonDecisionInvalid,
		"misspelt":        ReasonDecisionInvalid,
		"stepup_on_allow": ReasonDecisionInvalid,
		"bad_path":        ReasonDecisionInvalid,
	} {
		t.Run(route, func(t *testing.T) {
			s := reqScope("GET", "/x", route, nil)
			req := httptest.NewRequest("GET", "/x", nil)
			req.Header.Set("User-Agent", "not a number")
			want := emb.Decide(context.Background(), emb.Input(s, req), "")
			got := rem.Decide(context.Background(), rem.Input(s, req), "")
			if want.Reason != reason && reason != "" {
				t.Fatalf("embedded: reason %q (%s), want %q", want.Reason, want.Error, reason)
			}
			if got.Allow != want.Allow || got.Reason != want.Reason || got.Failed() != want.Failed() {
				t.Errorf("server: allow %v reason %q (%s); embedded: allow %v reason %q (%s)",
					got.Allow, got.Reason, got.Error, want.Allow, want.Reason, want.Error)
			}
		})
	}
}

// An OPA server that goes away turns every decision into a deny
// (policy_unavailable) and readiness fails; nothing is allowed meanwhile.
func TestRemoteServerStops(t *testing.T) {
	srv := opatest.Start(t, opatest.Options{Paths: []string{shippedDir}})
	rem := newRemote(t, srv.URL, nil, Options{})
	s := demoScope("GET", "whoami", "/api/whoami", nil)
	req := httptest.NewRequest("GET", "/api/whoami", nil)
	if d := rem.Decide(context.Background(), rem.Input(s, req), ""); !d.Allow {
		t.Fatalf("before: %s: %s", d.Reason, d.Error)
	}
	if err := rem.Ready(context.Background()); err != nil {
		t.Fatalf("Ready before: %v", err)
	}
	srv.Stop()
	for range 3 {
		if d := rem.Decide(context.Background(), rem.Input(s, req), ""); d.Allow || d.Reason != ReasonUnavailable {
			t.Errorf("after: allow %v reason %q (%s), want policy_unavailable", d.Allow, d.Reason, d.Error)
		}
	}
	if err := rem.Ready(context.Background()); err == nil {
		t.Error("Ready after = nil")
	}
}
