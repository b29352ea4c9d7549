package session

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session/fingerprint"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Keys: refs(testKey("a"))}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := Config{
		CookieName: "__Host-crmgate", IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour,
		Keys: c.Keys, Store: "memory", MaxEntries: 100000, CacheEntries: 10000, RefreshBefore: time.Minute, RefreshLockTTL: 30 * time.Second,
		Redis:       RedisConfig{Mode: "single", KeyPrefix: "crmgate:session:", DialTimeout: 2 * time.Second, Timeout: time.Second},
		Fingerprint: fingerprint.Config{Components: []string{"ja4", "user_agent", "ip_prefix"}, IPv4PrefixLength: 24, IPv6PrefixLength: 48},
	}
	if d := cmp.Diff(c, want, cmp.Comparer(func(a, b secret.Ref) bool { return a.String() == b.String() })); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	short := secret.FromValue([]byte("0123456789abcdefghijklmnopqrstu")) // 31 bytes
	unresolved := secret.MustParseRef("env:SESSION_KEY")
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"cookie without __Host-", func(c *Config) { c.CookieName = "crmgate" }, []string{"cookie_name"}},
		{"cookie __Secure-", func(c *Config) { c.CookieName = "__Secure-crmgate" }, []string{"cookie_name"}},
		{"cookie lower-case prefix", func(c *Config) { c.CookieName = "__host-crmgate" }, []string{"cookie_name"}},
		{"cookie prefix only", func(c *Config) { c.CookieName = "__Host-" }, []string{"cookie_name"}},
		{"cookie bad char", func(c *Config) { c.CookieName = "__Host-crm;gate" }, []string{"cookie_name"}},
		{"timeouts", func(c *Config) { c.IdleTimeout = -time.Second; c.AbsoluteTimeout = -1 }, []string{"idle_timeout", "absolute_timeout"}},
		{"idle longer than absolute", func(c *Config) { c.IdleTimeout = 13 * time.Hour }, []string{"idle_timeout"}},
		{"no keys", func(c *Config) { c.Keys = nil }, []string{"keys"}},
		{"short and duplicate keys", func(c *Config) {
			c.Keys = []secret.Ref{secret.FromValue(testKey("a")), short, secret.FromValue(testKey("a")), {}}
		}, []string{"keys[1]", "keys[2]", "keys[3]"}},
		{"unresolved key is the config package's to report", func(c *Config) { c.Keys = append(c.Keys, unresolved) }, nil},
		{"store", func(c *Config) { c.Store = "etcd" }, []string{"store"}},
		{"max entries", func(c *Config) { c.MaxEntries = -1 }, []string{"max_entries"}},
		{"cache entries negative", func(c *Config) { c.CacheEntries = -1 }, []string{"cache_entries"}},
		{"cache entries too many", func(c *Config) { c.CacheEntries = MaxCacheEntries + 1 }, []string{"cache_entries"}},
		{"cache entries one", func(c *Config) { c.CacheEntries = 1 }, nil},
		{"refresh", func(c *Config) { c.RefreshBefore = -1; c.RefreshLockTTL = -1 }, []string{"refresh_before", "refresh_lock_ttl"}},
		{"redis valid single", func(c *Config) { c.Store = "redis"; c.Redis.Addrs = []string{"127.0.0.1:6379"} }, nil},
		{"redis no address", func(c *Config) { c.Store = "redis" }, []string{"redis.addrs"}},
		{"redis bad address", func(c *Config) { c.Store = "redis"; c.Redis.Addrs = []string{"127.0.0.1"} }, []string{"redis.addrs[0]"}},
		{"redis mode", func(c *Config) { c.Store = "redis"; c.Redis.Mode = "ring"; c.Redis.Addrs = []string{"127.0.0.1:6379"} }, []string{"redis.mode"}},
		{"redis sentinel", func(c *Config) {
			c.Store = "redis"
			c.Redis.Mode = "sentinel"
			c.Redis.Addrs = []string{"127.0.0.1:26379", "127.0.0.2:26379"}
		}, []string{"redis.master_name"}},
		{"redis cluster", func(c *Config) {
			c.Store = "redis"
			c.Redis.Mode = "cluster"
			c.Redis.DB = 2
			c.Redis.MasterName = "m"
			c.Redis.Addrs = []string{"127.0.0.1:7000", "127.0.0.1:7001"}
		}, []string{"redis.db", "redis.master_name"}},
		{"redis tls and prefix", func(c *Config) {
			c.Store = "redis"
			c.Redis.Addrs = []string{"127.0.0.1:6379"}
			c.Redis.KeyPrefix = "a b"
			c.Redis.TLS = RedisTLSConfig{CAFile: "/ca.pem", ClientCert: "/c.pem"}
			c.Redis.Timeout = -1
		}, []string{"redis.key_prefix", "redis.timeout", "redis.tls.enabled", "redis.tls.client_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Keys: refs(testKey("a"), testKey("b"))}
			c.Defaults()
			tc.edit(&c)
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				var fe *fielderr.Error
				if !errors.As(e, &fe) {
					t.Fatalf("Validate returned %T %v, want *fielderr.Error", e, e)
				}
				got = append(got, fe.Path)
				if strings.Contains(fe.Msg, string(testKey("a"))) {
					t.Errorf("message %q shows a key", fe.Msg)
				}
			}
			slices.Sort(got)
			slices.Sort(tc.paths)
			if d := cmp.Diff(got, tc.paths); d != "" {
				t.Errorf("Validate paths (-got +want):\n%s\nerrors: %v", d, c.Validate())
			}
		})
	}
}

func TestRedisOptions(t *testing.T) {
	c := Config{Keys: refs(testKey("a")), Store: "redis"}
	c.Defaults()
	c.Redis.Mode = "sentinel"
	c.Redis.MasterName = "main"
	c.Redis.Addrs = []string{"127.0.0.1:26379"}
	c.Redis.Password = secret.FromValue(testKey("redis"))
	c.Redis.TLS = RedisTLSConfig{Enabled: true, ServerName: "redis.internal"}
	o, err := c.Redis.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "main" || o.Password != string(testKey("redis")) || o.SentinelPassword != o.Password || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.internal" || o.IsClusterMode {
		t.Errorf("RedisOptions = %+v", o)
	}
	c.Redis.TLS.CAFile = "/nonexistent/ca.pem"
	if _, err := c.Redis.RedisOptions(); err == nil {
		t.Error("RedisOptions with a missing CA file = nil error")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := Config{}
	c.Defaults()
	if _, err := New(c, NewMemoryStore(MemoryOptions{}), nil, nil); err == nil {
		t.Error("New without keys = nil error")
	}
	if _, err := New(testConfig(testKey("a")), nil, nil, nil); err == nil {
		t.Error("New without a store = nil error")
	}
}
