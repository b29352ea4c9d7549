package apikey

import (
	"slices"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/redisconn"
	"github.com/crmgate/crmgate/secret"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Pepper: secret.FromValue(testPepper("a"))}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := Config{
		Store: "file", File: "apikeys.json", Pepper: c.Pepper,
		Sources: []string{"header:X-API-Key", "authorization:ApiKey"},
		Redis:   redisconn.Config{Mode: "single", KeyPrefix: "crmgate:apikey:", DialTimeout: 2 * time.Second, Timeout: time.Second},
	}
	if d := cmp.Diff(c, want, cmp.Comparer(func(a, b secret.Ref) bool { return a.String() == b.String() })); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
	srcs, err := c.ParsedSources()
	if err != nil || len(srcs) != 2 || srcs[0].Kind() != SourceHeader || srcs[1].Kind() != SourceAuthorization {
		t.Errorf("ParsedSources = %v, %v", srcs, err)
	}
}

func TestConfigValidate(t *testing.T) {
	short := secret.FromValue(testPepper("a")[:31])
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"store", func(c *Config) { c.Store = "etcd" }, []string{"store"}},
		{"file with NUL", func(c *Config) { c.File = "keys\x00.json" }, []string{"file"}},
		{"file is a folder", func(c *Config) { c.File = "/var/lib/crmgate/" }, []string{"file"}},
		// Validation touches no file: a path that does not exist is fine.
		{"file does not exist yet", func(c *Config) { c.File = "/nonexistent/dir/apikeys.json" }, nil},
		{"no pepper", func(c *Config) { c.Pepper = secret.Ref{} }, []string{"pepper"}},
		{"short pepper", func(c *Config) { c.Pepper = short }, []string{"pepper"}},
		{"unresolved pepper is the config package's to report", func(c *Config) { c.Pepper = secret.MustParseRef("env:CRMGATE_APIKEY_PEPPER") }, nil},
		{"no sources", func(c *Config) { c.Sources = []string{} }, []string{"sources"}},
		{"bad sources", func(c *Config) { c.Sources = []string{"header:X-API-Key", "query:key", "header:Cookie"} }, []string{"sources[1]", "sources[2]"}},
		{"duplicate sources", func(c *Config) {
			c.Sources = []string{"header:X-API-Key", "header:x_api_key", "authorization:ApiKey", "authorization:apikey", "basic", "basic"}
		}, []string{"sources[1]", "sources[3]", "sources[5]"}},
		{"redis valid", func(c *Config) { c.Store = "redis"; c.Redis.Addrs = []string{"127.0.0.1:6379"} }, nil},
		// Redis settings are only checked when Redis is the store.
		{"redis unused", func(c *Config) { c.Redis.Mode = "ring" }, nil},
		{"redis no address", func(c *Config) { c.Store = "redis" }, []string{"redis.addrs"}},
		{"redis bad prefix", func(c *Config) {
			c.Store = "redis"
			c.Redis.Addrs = []string{"127.0.0.1:6379"}
			c.Redis.KeyPrefix = "a b"
		}, []string{"redis.key_prefix"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Pepper: secret.FromValue(testPepper("a"))}
			c.Defaults()
			tc.edit(&c)
			var paths []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				fe, ok := e.(*fielderr.Error)
				if !ok {
					t.Fatalf("Validate returned %T %v, want *fielderr.Error", e, e)
				}
				paths = append(paths, fe.Path)
			}
			slices.Sort(paths)
			if d := cmp.Diff(paths, tc.paths); d != "" {
				t.Errorf("Validate paths (-got +want):\n%s", d)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	in := `
store: redis
pepper: env:CRMGATE_APIKEY_PEPPER
sources: [header:X-Api-Key, basic]
redis:
  addrs: [redis:6379]
`
	var c Config
	if err := yaml.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	if c.Store != "redis" || c.Pepper.String() != "env:CRMGATE_APIKEY_PEPPER" || len(c.Sources) != 2 || c.Redis.KeyPrefix != "crmgate:apikey:" || c.File != "apikeys.json" {
		t.Errorf("decoded %+v", c)
	}
}
