package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const validConfig = `listen:
  https: "127.0.0.1:0"
tls:
  source: devca
  devca:
    dir: "%DIR%/tls"
admin:
  listen: "127.0.0.1:0"
upstreams:
  crm:
    url: "http://127.0.0.1:8081"
routes:
  - id: contacts.item
    path: /api/contacts/{id}
    methods: [GET]
    upstream: crm
    auth: none
`

// runCrmgate runs the binary and returns its combined output and exit code.
func runCrmgate(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	valid := strings.ReplaceAll(validConfig, "%DIR%", dir)
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // every line must appear in the output
	}{
		{name: "valid", yaml: valid, want: []string{": ok"}},
		{name: "unknown key", yaml: strings.Replace(valid, "  https:", "  htps: x\n  https:", 1),
			want: []string{"bad.yaml:2:", `unknown field "htps"`}},
		{name: "wrong type", yaml: valid + "server:\n  max_body_bytes: lots\n",
			want: []string{"bad.yaml:19:", "max_body_bytes"}},
		{name: "duplicate key", yaml: valid + "admin:\n  listen: x\n",
			want: []string{"bad.yaml:18:1:", `mapping key "admin" already defined at [7:1]`}},
		{name: "undefined upstream", yaml: strings.Replace(valid, "upstream: crm", "upstream: billing", 1),
			want: []string{"bad.yaml:16:", `routes[0].upstream: "billing" is not defined under upstreams (defined: crm)`}},
		{name: "bad path pattern", yaml: strings.Replace(valid, "/api/contacts/{id}", "/api/../{id}", 1),
			want: []string{"bad.yaml:14:", "routes[0].path:", "dot segment"}},
		{name: "bad method", yaml: strings.Replace(valid, "[GET]", "[get, TRACE]", 1),
			want: []string{`routes[0].methods[0]: "get" is not allowed`, `routes[0].methods[1]: "TRACE" is not allowed`}},
		{name: "cidr with host bits", yaml: valid + "    allow_cidrs: [10.1.2.3/8]\n",
			want: []string{`routes[0].allow_cidrs[0]: "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`}},
		{name: "literal secret", yaml: strings.Replace(valid, "  listen: \"127.0.0.1:0\"", "  listen: \"127.0.0.1:0\"\n  token: hunter2hunter2", 1),
			want: []string{"secrets must be references (env:NAME or file:/path)"}},
		{name: "weak secret", yaml: strings.Replace(valid, "  listen: \"127.0.0.1:0\"", "  listen: \"127.0.0.1:0\"\n  token: env:TEST_ADMIN_TOKEN", 1),
			env:  []string{"TEST_ADMIN_TOKEN=changeme"},
			want: []string{"admin.token: secret env:TEST_ADMIN_TOKEN: weak secret: contains the well-known default"}},
		{name: "missing secret", yaml: strings.Replace(valid, "  listen: \"127.0.0.1:0\"", "  listen: \"127.0.0.1:0\"\n  token: env:TEST_NOT_SET_ANYWHERE", 1),
			want: []string{"admin.token: secret env:TEST_NOT_SET_ANYWHERE: environment variable TEST_NOT_SET_ANYWHERE is not set"}},
		{name: "short secret file", yaml: strings.Replace(valid, "  listen: \"127.0.0.1:0\"", "  listen: \"127.0.0.1:0\"\n  token: file:"+filepath.Join(dir, "short"), 1),
			want: []string{"entropy, at least 256"}},
		{name: "conflicting routes", yaml: valid + "  - id: other\n    path: /api/contacts/{cid}\n    upstream: crm\n",
			want: []string{"routes[1].path:", "matches the same requests as routes[0]"}},
		{name: "every problem at once", yaml: strings.NewReplacer("upstream: crm", "upstream: x", "https: \"127.0.0.1:0\"", "https: nope", "[GET]", "[FETCH]").Replace(valid),
			want: []string{"listen.https:", "routes[0].upstream:", "routes[0].methods[0]:", "3 problem(s)"}},
		{name: "upstream with path", yaml: strings.Replace(valid, "http://127.0.0.1:8081", "http://127.0.0.1:8081/crm", 1),
			want: []string{"upstreams.crm.url: must not have a path"}},
		{name: "empty file", yaml: "\n", want: []string{"the file is empty"}},
	}
	if err := os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "bad.yaml"
			if tt.name == "valid" {
				name = "good.yaml"
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			out, code := runCrmgate(t, tt.env, "config", "validate", path)
			if (code == 0) != (tt.name == "valid") {
				t.Errorf("exit code %d\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("listen:\n  https: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCrmgate(t, nil, "serve", "-c", path)
	if code == 0 || !strings.Contains(out, "nothing started") || !strings.Contains(out, "listen.https") {
		t.Errorf("serve with a bad config: exit %d\n%s", code, out)
	}
}

func TestConfigSchema(t *testing.T) {
	out, code := runCrmgate(t, nil, "config", "schema")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, w := range []string{`"$schema"`, `"routes"`, `"upstreams"`, `"additionalProperties": false`, `"max_body_bytes"`, `"tls"`} {
		if !strings.Contains(out, w) {
			t.Errorf("schema lacks %s", w)
		}
	}
}
