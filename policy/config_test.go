package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	want := Config{
		Dir:         "policies",
		Entrypoint:  "data.crmgate.authz.decision",
		EvalTimeout: 50 * time.Millisecond,
		Headers:     DefaultHeaders,
		Reload:      ReloadWatch,
		Debounce:    200 * time.Millisecond,
		TestTimeout: 30 * time.Second,
	}
	if diff := cmp.Diff(c, want); diff != "" {
		t.Errorf("Defaults() (-got +want):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
	// An explicit empty list gives the policy no header at all.
	c = Config{Headers: []string{}}
	c.Defaults()
	if len(c.Headers) != 0 {
		t.Errorf("Defaults() replaced an explicit empty header list with %v", c.Headers)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"entrypoint not data", func(c *Config) { c.Entrypoint = "input.x.y" }, []string{"entrypoint"}},
		{"entrypoint too short", func(c *Config) { c.Entrypoint = "data.x" }, []string{"entrypoint"}},
		{"entrypoint variable", func(c *Config) { c.Entrypoint = "data.x[y].z" }, []string{"entrypoint"}},
		{"entrypoint syntax", func(c *Config) { c.Entrypoint = "data..x" }, []string{"entrypoint"}},
		{"timeouts", func(c *Config) { c.EvalTimeout = -1; c.TestTimeout = -1; c.Debounce = -1 }, []string{"eval_timeout", "test_timeout", "debounce"}},
		{"eval timeout too long", func(c *Config) { c.EvalTimeout = time.Minute }, []string{"eval_timeout"}},
		{"secret headers", func(c *Config) { c.Headers = []string{"Cookie", "authorization", "X-Api-Key"} }, []string{"headers[0]", "headers[1]", "headers[2]"}},
		{"header syntax and repeats", func(c *Config) { c.Headers = []string{"a b", "x-a", "X-A"} }, []string{"headers[0]", "headers[2]"}},
		{"reload", func(c *Config) { c.Reload = "poll" }, []string{"reload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.Defaults()
			tt.edit(&c)
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				fe, ok := e.(*fielderr.Error)
				if !ok {
					t.Errorf("Validate error %v is not a *fielderr.Error", e)
					continue
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.paths)
			slices.Sort(want)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("Validate paths (-got +want):\n%s", diff)
			}
		})
	}
}

func TestReadSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.rego":              "package a\n",
		"sub/b.yaml":          "x: 1\n",
		"sub/c.json":          "{}",
		"README.md":           "not a policy",
		".a.rego.swp":         "editor swap file",
		".git/config.yaml":    "hidden folder",
		"..2026_01_02/d.rego": "a ConfigMap's hidden data folder",
	})
	src, err := ReadSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src.Files(), []string{"a.rego", "sub/b.yaml", "sub/c.json"}); diff != "" {
		t.Errorf("Files() (-got +want):\n%s", diff)
	}
	if len(src.Revision()) != 32 {
		t.Errorf("Revision() = %q, want 32 hex digits", src.Revision())
	}

	// The revision follows the content and only the content.
	again, _ := ReadSource(dir)
	if again.Revision() != src.Revision() {
		t.Errorf("same content, different revisions %s %s", again.Revision(), src.Revision())
	}
	writeFiles(t, dir, map[string]string{"README.md": "changed, not a policy"})
	if again, _ := ReadSource(dir); again.Revision() != src.Revision() {
		t.Errorf("a change to a non-policy file changed the revision")
	}
	writeFiles(t, dir, map[string]string{"sub/c.json": `{"k": 1}`})
	if again, _ := ReadSource(dir); again.Revision() == src.Revision() {
		t.Errorf("a change to a data file kept the revision")
	}

	// A renamed file is a new revision even with the same bytes.
	one, _ := NewSource("x", map[string][]byte{"a.rego": []byte("package a\n")})
	two, _ := NewSource("x", map[string][]byte{"b.rego": []byte("package a\n")})
	if one.Revision() == two.Revision() {
		t.Errorf("renaming a file kept the revision")
	}

	// The folder may be a symbolic link, as mounted volumes are.
	link := filepath.Join(t.TempDir(), "policies")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal("creating a symbolic link:", err)
	}
	viaLink, err := ReadSource(link)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(viaLink.Files(), []string{"a.rego", "sub/b.yaml", "sub/c.json"}); diff != "" {
		t.Errorf("Files() through a link (-got +want):\n%s", diff)
	}
}

func TestNewSourceRejectsPaths(t *testing.T) {
	for _, name := range []string{"../a.rego", "/abs/a.rego", "a.txt", ".hidden.rego"} {
		if _, err := NewSource("x", map[string][]byte{name: nil}); err == nil {
			t.Errorf("NewSource(%q) = nil error, want a refusal", name)
		}
	}
}
