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
}
