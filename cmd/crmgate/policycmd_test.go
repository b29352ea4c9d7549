package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shippedPolicies is the folder of the policies crmgate ships.
const shippedPolicies = "../../policies"

// runPolicy runs `crmgate policy ARGS...` in-process.
func runPolicy(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"policy"}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

// demoConfigFile writes the demo's configuration naming secret files
// that do not exist: eval reads no secret. Its development CA exists, as
// the configuration check reads the identity provider's CA file.
func demoConfigFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := ensureDevCA(context.Background(), filepath.Join(dir, "tls"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-secrets")
	p := filepath.Join(dir, "crmgate.yaml")
	err := writeDemoConfig(p, demoParams{
		HTTPS: "127.0.0.1:8443", Admin: "127.0.0.1:9090", CRM: "http://127.0.0.1:8081", TLSDir: filepath.Join(dir, "tls"),
		GatewayURL: "https://localhost:8443", IdPURL: "https://127.0.0.1:8444", CAFile: filepath.Join(dir, "tls", "ca.pem"),
		KeyFile: filepath.Join(dir, "apikeys.json"),
		Secrets: secretFiles{
			SessionKey: filepath.Join(missing, "session.key"), ClientSecret: filepath.Join(missing, "oidc-client.secret"),
			AdminToken: filepath.Join(missing, "admin.token"), AssertionKey: filepath.Join(missing, "assertion-key.pem"),
			APIKeyPepper: filepath.Join(missing, "apikey.pepper"), RedactHashKey: filepath.Join(missing, "redact-hash.key"),
			AuditSigningKey: filepath.Join(missing, "audit-signing.pem"),
		},
		AuditLog: filepath.Join(dir, "audit", "audit.log"), AuditSpool: filepath.Join(dir, "audit", "spool"),
		// The demo's policy section: its eval_timeout, not the default's
		// 50 ms, bounds a first decision on a loaded machine.
		PolicyDir: mustAbsTest(t, "../../policies"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyEval(t *testing.T) {
	cfg := demoConfigFile(t)
	item := []string{"--route", "contacts.item", "--param", "id=7", "--tag", "pii"}
	tests := []struct {
		name       string
		args       []string
		wantErr    error // nil, errUsage, or errAny
		wantOut    []string
		wantErrOut []string
	}{
		{name: "sales reads a contact, routed by the configuration",
			args:    []string{"--request", "GET /api/contacts/7", "--as", "alice", "--role", "sales", "-c", cfg},
			wantOut: []string{`"allow": true`, `"reason": "sales may GET contacts.item"`, `"owner": "alice"`, "because:", "authz.rego:"}},
		{name: "sales reads a contact, route by hand",
			args:    append([]string{"--request", "GET /api/contacts/7", "--as", "alice", "--role", "sales"}, item...),
			wantOut: []string{`"allow": true`}},
		{name: "support may not write: a deny is a result",
			args:    []string{"--request", "PUT /api/contacts/7", "--as", "dave", "--role", "support", "-c", cfg},
			wantOut: []string{`"allow": false`, "no role of the subject may PUT contacts.item"}},
		{name: "a deny fails on request",
			args:    []string{"--request", "PUT /api/contacts/7", "--as", "dave", "--role", "support", "-c", cfg, "--fail-on-deny"},
			wantErr: errAny, wantOut: []string{`"allow": false`}},
		{name: "admin deleting without a second factor is asked to step up",
			args:    []string{"--request", "DELETE /api/contacts/7", "--as", "carol", "--role", "admin", "-c", cfg},
			wantOut: []string{`"allow": false`, `"step_up"`, `"max_age_s": 300`, "step_up := {"}},
		{name: "admin deleting with a fresh second factor",
			args:    []string{"--request", "DELETE /api/contacts/7", "--as", "carol", "--role", "admin", "--amr", "pwd", "--amr", "otp", "--auth-age", "2m", "-c", cfg},
			wantOut: []string{`"allow": true`, "admin may DELETE contacts.item"}},
		{name: "a second factor older than the policy allows",
			args:    []string{"--request", "DELETE /api/contacts/7", "--as", "carol", "--role", "admin", "--amr", "otp", "--auth-age", "301s", "-c", cfg},
			wantOut: []string{`"step_up"`}},
		{name: "an API key within its scope",
			args:    []string{"--request", "GET /api/contacts/7", "--as", "key:integration-read", "--scope", "contacts:read", "--tier", "standard", "-c", cfg},
			wantOut: []string{`"allow": true`, "API key scope contacts:read allows GET contacts.item"}},
		{name: "an API key outside its scope",
			args:    []string{"--request", "GET /api/invoices", "--api-key", "integration-read", "--scope", "contacts:read", "--tier", "standard", "-c", cfg},
			wantOut: []string{`"allow": false`, "needs scope invoices:read"}},
		{name: "anonymous on a public route",
			args:    []string{"--request", "GET /api/whoami", "--as", "anonymous", "-c", cfg},
			wantOut: []string{`"allow": true`, `"tier": "anonymous"`}},
		{name: "anonymous on a route that needs a caller: 401, no policy",
			args:    []string{"--request", "GET /api/contacts/7", "--as", "anonymous", "-c", cfg},
			wantErr: errAny, wantErrOut: []string{"requires an identified caller", "401"}},
		{name: "no route: 404, no policy",
			args:    []string{"--request", "GET /api/nothing", "--as", "alice", "-c", cfg},
			wantErr: errAny, wantErrOut: []string{"no route matches", "404"}},
		{name: "a method the route does not allow: 405",
			args:    []string{"--request", "PATCH /api/contacts/7", "--as", "alice", "-c", cfg},
			wantErr: errAny, wantErrOut: []string{"405", "GET, HEAD, PUT, DELETE"}},
		// Traversal hidden in percent-encoding is refused as the gateway refuses it, never resolved to /api/admin.
		{name: "encoded traversal, routed",
			args:    []string{"--request", "GET /api/%2e%2e/admin/users", "--as", "carol", "--role", "admin", "-c", cfg},
			wantErr: errAny, wantErrOut: []string{"400", "dot segment"}},
		{name: "encoded traversal, route by hand",
			args:    append([]string{"--request", "GET /api/contacts/%2E%2E/admin/users", "--as", "carol"}, item...),
			wantErr: errAny, wantErrOut: []string{"400", "dot segment"}},
		{name: "a bad request line",
			args:    []string{"--request", "GET", "--as", "alice", "-c", cfg},
			wantErr: errUsage, wantErrOut: []string{`--request "GET": want 'METHOD PATH[?QUERY]'`}},
		{name: "a lower-case method",
			args:    []string{"--request", "get /api/contacts", "--as", "alice", "-c", cfg},
			wantErr: errUsage, wantErrOut: []string{"did you mean GET?"}},
		{name: "a credential header",
			args:    []string{"--request", "GET /api/whoami", "--as", "alice", "-c", cfg, "--header", "Authorization: Bearer x"},
			wantErr: errUsage, wantErrOut: []string{"carries credentials"}},
		{name: "a header outside the allow-list is noted",
			args:    []string{"--request", "GET /api/whoami", "--as", "anonymous", "-c", cfg, "--header", "X-Debug: 1", "--header", "User-Agent: curl/8", "--print-input", "--explain", "none"},
			wantOut: []string{`"user-agent": "curl/8"`}, wantErrOut: []string{"X-Debug is not in the policy's header allow-list"}},
		{name: "a flag of another kind of caller",
			args:    []string{"--request", "GET /api/contacts", "--as", "alice", "--scope", "contacts:read", "-c", cfg},
			wantErr: errUsage, wantErrOut: []string{"--scope does not describe a caller of kind user"}},
		{name: "no caller",
			args:    []string{"--request", "GET /api/contacts", "-c", cfg},
			wantErr: errUsage, wantErrOut: []string{"who is calling?"}},
		{name: "no route without a configuration",
			args:    []string{"--request", "GET /api/contacts", "--as", "alice"},
			wantErr: errUsage, wantErrOut: []string{"which route?"}},
		{name: "the route by hand and a configuration",
			args:    []string{"--request", "GET /api/contacts", "--as", "alice", "-c", cfg, "--route", "x"},
			wantErr: errUsage, wantErrOut: []string{"--route describe the route by hand"}},
		{name: "OPA's trace",
			args:    append([]string{"--request", "PUT /api/contacts/7", "--as", "dave", "--role", "support", "--explain", "fails"}, item...),
			wantOut: []string{"trace:", "authz.rego", "Fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runPolicy(t, append([]string{"eval", shippedPolicies}, tt.args...)...)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("policy eval = %v, want success\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			case tt.wantErr == errUsage && !errors.Is(err, errUsage):
				t.Fatalf("policy eval = %v, want a usage error\nstderr:\n%s", err, errOut)
			case tt.wantErr == errAny && (err == nil || errors.Is(err, errUsage)):
				t.Fatalf("policy eval = %v, want an error\nstdout:\n%s", err, out)
			}
			if err != nil {
				errOut += err.Error()
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErrOut {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// errAny marks a test case that expects an error other than errUsage.
var errAny = errors.New("any error")

// --print-input prints the input the policy decides on, and --subject
// reads a subject written as input.subject.
func TestPolicyEvalSubjectFile(t *testing.T) {
	dir := t.TempDir()
	subj := filepath.Join(dir, "subject.json")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(subj, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"kind": "user", "id": "bob", "roles": ["finance"], "auth_time": 1767366245, "claims": {"level": 3}}`)
	out, errOut, err := runPolicy(t, "eval", shippedPolicies, "--request", "GET /api/invoices?page=2", "--route", "invoices.list",
		"--subject", subj, "--time", "2026-01-02T15:04:05Z", "--client-ip", "::ffff:203.0.113.7", "--print-input", "--explain", "none")
	if err != nil {
		t.Fatalf("policy eval = %v\n%s", err, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var in struct {
		Request struct {
			Path     string
			ClientIP string `json:"client_ip"`
			Query    map[string][]string
		}
		Subject map[string]any
		Session map[string]any
	}
	var d struct{ Allow bool }
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if !d.Allow || in.Request.ClientIP != "203.0.113.7" || in.Request.Query["page"][0] != "2" ||
		in.Subject["id"] != "bob" || in.Subject["auth_time"] != float64(1767366245) || in.Session == nil {
		t.Errorf("input and decision = %+v %+v, want bob allowed with his subject, the query and an unmapped client address\n%s", in, d, out)
	}

	write(`{"kind": "user", "id": "bob", "role": ["finance"]}`)
	if _, _, err := runPolicy(t, "eval", shippedPolicies, "--request", "GET /api/invoices", "--route", "invoices.list", "--subject", subj); err == nil || !strings.Contains(err.Error(), `unknown field "role"`) {
		t.Errorf("policy eval with a misspelt subject field = %v, want it refused", err)
	}
}

// writePolicy writes a policy folder for the test subcommands.
func writePolicy(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	covPolicy = `package crmgate.authz

default decision := {"allow": false, "reason": "closed"}

decision := {"allow": true, "reason": "admin"} if {
	"admin" in input.subject.roles
}
`
	covTestDeny = `package crmgate.authz_test

import data.crmgate.authz

test_closed if not authz.decision.allow with input as {"subject": {"roles": []}}
`
	covTestBoth = covTestDeny + `
test_admin if authz.decision.allow with input as {"subject": {"roles": ["admin"]}}
`
)

func TestPolicyTestCoverage(t *testing.T) {
	untested := writePolicy(t, map[string]string{"authz.rego": covPolicy, "authz_test.rego": covTestDeny})
	out, _, err := runPolicy(t, "test", untested, "--min-coverage", "100")
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "below --min-coverage 100%") {
		t.Errorf("test --min-coverage 100 of an untested rule = %v, want a coverage failure", err)
	}
	for _, w := range []string{"1 passed, 0 failed", "coverage of " + untested + ": 33.33% (1 of 3 lines)", filepath.Join(untested, "authz.rego") + ":5-6: not covered"} {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q:\n%s", w, out)
		}
	}

	tested := writePolicy(t, map[string]string{"authz.rego": covPolicy, "authz_test.rego": covTestBoth})
	out, _, err = runPolicy(t, "test", tested, "--coverage", "--min-coverage", "100")
	if err != nil || !strings.Contains(out, "100.00%") || strings.Contains(out, "not covered") {
		t.Errorf("test --min-coverage 100 of a fully tested set = %v\n%s", err, out)
	}

	out, errOut, err := runPolicy(t, "test", untested, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Files    map[string]json.RawMessage `json:"files"`
		Coverage float64                    `json:"coverage"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Coverage > 34 || rep.Coverage < 33 || rep.Files[filepath.Join(untested, "authz.rego")] == nil {
		t.Errorf("test --format json = %v %+v, want OPA's coverage report alone\n%s", err, rep, out)
	}
	if !strings.Contains(errOut, "1 passed") {
		t.Errorf("test --format json: the summary belongs on stderr:\n%s", errOut)
	}

	if _, _, err := runPolicy(t, "test", tested, "--min-coverage", "101"); !errors.Is(err, errUsage) {
		t.Errorf("test --min-coverage 101 = %v, want a usage error", err)
	}
}

func TestPolicyCheck(t *testing.T) {
	out, _, err := runPolicy(t, "check", shippedPolicies, "-c", demoConfigFile(t))
	if err != nil || !strings.Contains(out, "ok (revision ") {
		t.Errorf("check of the shipped set against the demo configuration = %v\n%s", err, out)
	}
	bad := writePolicy(t, map[string]string{"authz.rego": `package crmgate.authz

default decision := {"allow": false}

decision := {"allow": true, "redacts": [input.route.id]} if input.route.id == "x"
`})
	_, errOut, err := runPolicy(t, "check", bad)
	if err == nil || !strings.Contains(errOut, filepath.Join(bad, "authz.rego")+`:5: data.crmgate.authz.decision: the decision does not match the schema: unknown field "redacts"`) {
		t.Errorf("check of a misspelt decision field = %v\n%s", err, errOut)
	}
	undefined := writePolicy(t, map[string]string{"authz.rego": "package crmgate.authz\n\ndecision := {\"allow\": true} if input.route.id == \"x\"\n"})
	if _, errOut, err := runPolicy(t, "check", undefined); err == nil || !strings.Contains(errOut, "authz.rego:3:") || !strings.Contains(errOut, "add a default rule") {
		t.Errorf("check of an entrypoint without a default = %v\n%s", err, errOut)
	}
	if _, _, err := runPolicy(t, "check"); !errors.Is(err, errUsage) {
		t.Errorf("check without DIR = %v, want a usage error", err)
	}
}

// A configuration whose policy comes from a signed bundle is checked with
// a stand-in public key of the configured algorithm, and the decision is
// made within its eval_timeout, as the gateway makes it.
func TestPolicyEvalBundleConfigAndDeadline(t *testing.T) {
	cfg := demoConfigFile(t)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The bundle's policy section replaces the demo's.
	b = regexp.MustCompile(`(?m)^policy:\n(  .*\n)+`).ReplaceAll(b, nil)
	for _, alg := range []string{"RS256", "ES384", "HS256"} {
		p := filepath.Join(t.TempDir(), "bundle.yaml")
		conf := string(b) + "\npolicy:\n  eval_timeout: 1s\n  bundle:\n    file: /no/such/bundle.tar.gz\n    public_key: file:/no/such/verify.pem\n    algorithm: " + alg + "\n"
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, err := runPolicy(t, "eval", "../../policies", "-c", p, "--request", "GET /api/contacts/7", "--as", "alice", "--role", "sales", "--explain", "none")
		if err != nil || !strings.Contains(out, `"allow": true`) {
			t.Errorf("%s: eval with a bundle configuration = %v\n%s%s", alg, err, out, stderr)
		}
	}
	slow := writePolicy(t, map[string]string{"authz.rego": `package crmgate.authz

decision := {"allow": true, "reason": "slow"} if {
	count([x | some x in numbers.range(1, 3000000)]) > 0
}
`})
	out, stderr, err := runPolicy(t, "eval", slow, "--request", "GET /x", "--as", "alice", "--route", "r", "--explain", "none")
	if err == nil || !strings.Contains(out, "policy_timeout") {
		t.Errorf("a policy slower than the gateway's deadline: err %v\n%s%s", err, out, stderr)
	}
}

// eval describes the session's fingerprint check with --changed and
// --browser, as the shipped policy's session rules read it.
func TestPolicyEvalFingerprint(t *testing.T) {
	eval := func(args ...string) (string, error) {
		t.Helper()
		a := append([]string{"eval", shippedPolicies, "--request", "GET /api/contacts", "--route", "contacts.list", "--as", "carol", "--role", "admin", "--explain", "none"}, args...)
		out, stderr, err := runPolicy(t, a...)
		if err != nil {
			return stderr, err
		}
		return out, nil
	}
	for _, tc := range []struct {
		args   []string
		action string
	}{
		{nil, "none"},
		{[]string{"--changed", "ja4"}, "revoke"},
		{[]string{"--changed", "ip_prefix"}, "step_up"},
		{[]string{"--changed", "ja4", "--changed", "user_agent", "--browser", "chrome/130,chrome/131"}, "step_up"},
		{[]string{"--changed", "user_agent", "--browser", "chrome/130,firefox/131"}, "revoke"},
	} {
		out, err := eval(tc.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		var d struct {
			Allow         bool
			SessionAction string `json:"session_action"`
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		if d.SessionAction != tc.action || d.Allow != (tc.action == "none") {
			t.Errorf("%v: %+v, want session_action %q", tc.args, d, tc.action)
		}
	}
	if _, err := eval("--changed", "cookie"); err == nil {
		t.Error("an unknown component was accepted")
	}
	if _, err := eval("--browser", "chrome/130"); err == nil {
		t.Error("--browser without a comma was accepted")
	}
	if _, _, err := runPolicy(t, "eval", shippedPolicies, "--request", "GET /api/contacts", "--route", "contacts.list", "--as", "key:integration-read", "--changed", "ja4"); err == nil {
		t.Error("--changed for an API key was accepted")
	}
}

func mustAbsTest(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
