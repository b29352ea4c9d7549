package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The policy tooling security teams run before a change reaches a gateway.
func TestPolicyCommands(t *testing.T) {
	if out, code := runCrmgate(t, nil, "policy", "check", "../policies"); code != 0 || !strings.Contains(out, "ok (revision ") {
		t.Errorf("check of the shipped set: %d\n%s", code, out)
	}
	if out, code := runCrmgate(t, nil, "policy", "test", "../policies"); code != 0 || !strings.Contains(out, " 0 failed, 0 errored") {
		t.Errorf("tests of the shipped set: %d\n%s", code, out)
	}

	dir := t.TempDir()
	in := filepath.Join(dir, "input.json")
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	input := func(role string) string {
		return `{"request": {"id": "r1", "method": "DELETE", "path": "/api/contacts/7", "query": {}, "host": "crm.example.com",
  "client_ip": "203.0.113.7", "time": "2026-12-05T03:00:00Z", "headers": {}},
 "route": {"id": "contacts.item", "params": {"id": "7"}, "tags": ["pii"]},
 "subject": {"kind": "user", "id": "u1", "email": "", "roles": ["` + role + `"], "groups": [], "acr": "", "amr": ["pwd"],
  "auth_time": 1796439000, "api_key": null, "claims": {}},
 "session": null}`
	}
	write(in, input("support"))
	out, code := runCrmgate(t, nil, "policy", "eval", "../policies", "--input", in)
	if code != 0 || !strings.Contains(out, `"allow": false`) || !strings.Contains(out, `"revision"`) {
		t.Errorf("support deleting a contact: %d\n%s", code, out)
	}
	write(in, input("admin"))
	out, _ = runCrmgate(t, nil, "policy", "eval", "../policies", "--input", in)
	if !strings.Contains(out, `"step_up"`) {
		t.Errorf("admin deleting without a recent second factor should be asked to step up:\n%s", out)
	}
	write(in, `{"request": {"idd": 1}}`)
	if out, code := runCrmgate(t, nil, "policy", "eval", "../policies", "--input", in); code == 0 || !strings.Contains(out, `unknown field "idd"`) {
		t.Errorf("malformed input: %d\n%s", code, out)
	}

	bad := filepath.Join(dir, "bad")
	if err := os.Mkdir(bad, 0o700); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(bad, "authz.rego"), "package crmgate.authz\n\ndecision := {\"allow\": true} if {\n\tinput.x ==\n}\n")
	if out, code := runCrmgate(t, nil, "policy", "check", bad); code == 0 || !strings.Contains(out, "authz.rego:5") {
		t.Errorf("a broken policy: %d\n%s", code, out)
	}
	write(filepath.Join(bad, "authz.rego"), "package crmgate.authz\n\nallow := true\n")
	if out, code := runCrmgate(t, nil, "policy", "check", bad); code == 0 || !strings.Contains(out, "decision") {
		t.Errorf("a set without the entrypoint: %d\n%s", code, out)
	}
	write(filepath.Join(bad, "authz.rego"), "package crmgate.authz\n\ndecision := {\"allow\": true}\n")
	write(filepath.Join(bad, "authz_test.rego"), "package crmgate.authz_test\n\nimport data.crmgate.authz\n\ntest_denies if not authz.decision.allow\n")
	if out, code := runCrmgate(t, nil, "policy", "test", bad); code == 0 || !strings.Contains(out, "1 failed") || !strings.Contains(out, "authz_test.rego:5") {
		t.Errorf("a failing policy test: %d\n%s", code, out)
	}

	if out, code := runCrmgate(t, nil, "policy", "test", "../policies", "--coverage"); code != 0 || !strings.Contains(out, "coverage of ../policies: ") {
		t.Errorf("coverage of the shipped set: %d\n%s", code, out)
	}
}

// policyEvalConfig is a gateway configuration with the demo's routes.
// Its secrets do not exist: eval reads none.
const policyEvalConfig = `listen:
  https: "127.0.0.1:8443"
tls:
  source: devca
  devca:
    dir: "%DIR%/tls"
admin:
  listen: "127.0.0.1:9090"
  token: "file:%DIR%/missing/admin.token"
oidc:
  issuer: "https://idp.example.com"
  client_id: crmgate
  client_secret: "file:%DIR%/missing/oidc.secret"
  external_url: "https://crm.example.com"
session:
  keys: ["file:%DIR%/missing/session.key"]
api_keys:
  file: "%DIR%/missing/apikeys.json"
  pepper: "env:CRMGATE_E2E_MISSING_PEPPER"
policy:
  dir: ../policies
upstreams:
  crm:
    url: "http://127.0.0.1:8081"
routes:
  - id: contacts.list
    path: /api/contacts
    methods: [GET, HEAD, POST]
    upstream: crm
    tags: [pii]
  - id: contacts.item
    path: /api/contacts/{id}
    methods: [GET, HEAD, PUT, DELETE]
    upstream: crm
    tags: [pii]
  - id: admin.users
    path: /api/admin/users
    upstream: crm
    tags: [admin]
  - id: whoami
    path: /api/whoami
    upstream: crm
    auth: optional
`

// eval builds the input the gateway would build for a request line and a
// caller, and says which rules decided.
func TestPolicyCommandsEval(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "crmgate.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(policyEvalConfig, "%DIR%", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	eval := func(args ...string) (string, int) {
		t.Helper()
		return runCrmgate(t, nil, append([]string{"policy", "eval", "../policies", "-c", cfg}, args...)...)
	}
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"sales reads a contact", []string{"--request", "GET /api/contacts/7", "--as", "alice", "--role", "sales"}, 0,
			[]string{`"allow": true`, `"owner": "alice"`, "because:", "../policies/authz.rego:"}},
		{"support may not write a contact: a deny is a result", []string{"--request", "PUT /api/contacts/7", "--as", "dave", "--role", "support"}, 0,
			[]string{`"allow": false`, "no role of the subject may PUT contacts.item"}},
		{"a deny fails when asked to", []string{"--request", "PUT /api/contacts/7", "--as", "dave", "--role", "support", "--fail-on-deny"}, 1,
			[]string{`"allow": false`, "denied:"}},
		{"admin deleting without a second factor steps up", []string{"--request", "DELETE /api/contacts/7", "--as", "carol", "--role", "admin"}, 0,
			[]string{`"allow": false`, `"step_up"`, `"acr": "mfa"`}},
		{"admin deleting with a fresh second factor", []string{"--request", "DELETE /api/contacts/7", "--as", "carol", "--role", "admin", "--amr", "otp", "--auth-age", "1m"}, 0,
			[]string{`"allow": true`}},
		{"an API key within its scope", []string{"--request", "GET /api/contacts/7", "--api-key", "integration-read", "--scope", "contacts:read", "--tier", "standard"}, 0,
			[]string{`"allow": true`, "API key scope contacts:read"}},
		{"no route matches: the gateway answers 404", []string{"--request", "GET /api/nothing", "--as", "alice"}, 1,
			[]string{"no route matches", "404"}},
		// Traversal hidden in percent-encoding never resolves to /api/admin: the gateway refuses it.
		{"encoded traversal", []string{"--request", "GET /api/%2e%2e/admin/users", "--as", "carol", "--role", "admin"}, 1,
			[]string{"400", "dot segment"}},
		{"encoded traversal below a route", []string{"--request", "GET /api/contacts/%2E%2E/%2e%2e/api/admin/users", "--as", "carol", "--role", "admin"}, 1,
			[]string{"400", "dot segment"}},
		{"a bad request line", []string{"--request", "/api/contacts", "--as", "alice"}, 2,
			[]string{`--request "/api/contacts": want 'METHOD PATH[?QUERY]'`}},
		{"an anonymous caller where one is required", []string{"--request", "GET /api/contacts", "--as", "anonymous"}, 1,
			[]string{"401"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, code := eval(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// test --min-coverage fails a set with a rule its tests never reach.
func TestPolicyCommandsCoverage(t *testing.T) {
	const rules = `package crmgate.authz

default decision := {"allow": false, "reason": "closed"}

decision := {"allow": true, "reason": "admin"} if {
	"admin" in input.subject.roles
}
`
	const denyTest = `package crmgate.authz_test

import data.crmgate.authz

test_closed if not authz.decision.allow with input as {"subject": {"roles": []}}
`
	const adminTest = `
test_admin if authz.decision.allow with input as {"subject": {"roles": ["admin"]}}
`
	set := func(tests string) string {
		d := t.TempDir()
		for name, body := range map[string]string{"authz.rego": rules, "authz_test.rego": tests} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	untested := set(denyTest)
	out, code := runCrmgate(t, nil, "policy", "test", untested, "--min-coverage", "100")
	if code != 1 || !strings.Contains(out, "below --min-coverage 100%") || !strings.Contains(out, filepath.Join(untested, "authz.rego")+":5-6: not covered") {
		t.Errorf("an untested rule: exit %d\n%s", code, out)
	}
	out, code = runCrmgate(t, nil, "policy", "test", set(denyTest+adminTest), "--coverage", "--min-coverage", "100")
	if code != 0 || !strings.Contains(out, ": 100.00% (3 of 3 lines)") {
		t.Errorf("every rule tested: exit %d\n%s", code, out)
	}
}
