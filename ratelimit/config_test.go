package ratelimit

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/fielderr"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Tiers: map[string]Tier{"standard": {Limit: 10}, "daily": {Limit: 1000, Window: 24 * time.Hour, Burst: 50}}}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(defaults) = %v", err)
	}
	want := Config{
		Backend: "memory", OnRedisError: "deny", KeyPrefix: "crmgate:ratelimit:", MaxKeys: 100000,
		Tiers: map[string]Tier{
			"standard": {Limit: 10, Window: time.Second, Burst: 10},
			"daily":    {Limit: 1000, Window: 24 * time.Hour, Burst: 50},
		},
	}
	if c.Redis.Mode != "single" || c.Redis.KeyPrefix != "crmgate:ratelimit:" {
		t.Errorf("redis defaults %+v", c.Redis)
	}
	c.Redis = want.Redis
	if d := cmp.Diff(c, want, cmpopts.IgnoreFields(Config{}, "Redis")); d != "" {
		t.Errorf("Defaults (-got +want):\n%s", d)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"valid redis local", func(c *Config) { c.Backend = "redis"; c.OnRedisError = "local" }, nil},
		{"backend", func(c *Config) { c.Backend = "etcd" }, []string{"backend"}},
		{"on redis error", func(c *Config) { c.OnRedisError = "allow" }, []string{"on_redis_error"}},
		{"key prefix", func(c *Config) { c.KeyPrefix = "rl {x}" }, []string{"key_prefix"}},
		{"empty key prefix", func(c *Config) { c.KeyPrefix = "" }, []string{"key_prefix"}},
		{"max keys", func(c *Config) { c.MaxKeys = -1 }, []string{"max_keys"}},
		{"no tiers", func(c *Config) { c.Tiers = nil }, []string{"tiers"}},
		{"tier names", func(c *Config) {
			c.Tiers["Gold"] = Tier{Limit: 1, Window: time.Second, Burst: 1}
			c.Tiers[`a"b`] = Tier{Limit: 1, Window: time.Second, Burst: 1}
			c.Tiers[""] = Tier{Limit: 1, Window: time.Second, Burst: 1}
			c.Tiers["abcdefghijklmnopqrstuvwxyz0123456"] = Tier{Limit: 1, Window: time.Second, Burst: 1}
			c.Tiers["a-b_c9"] = Tier{Limit: 1, Window: time.Second, Burst: 1}
		}, []string{"tiers.", "tiers.Gold", `tiers.a"b`, "tiers.abcdefghijklmnopqrstuvwxyz0123456"}},
		{"every tier problem at once", func(c *Config) {
			c.Tiers["standard"] = Tier{Limit: 0, Window: 500 * time.Millisecond, Burst: 0}
		}, []string{"tiers.standard.limit", "tiers.standard.window", "tiers.standard.burst"}},
		{"too large", func(c *Config) {
			c.Tiers["standard"] = Tier{Limit: MaxQuota + 1, Window: 25 * time.Hour, Burst: MaxQuota + 1}
		}, []string{"tiers.standard.limit", "tiers.standard.window", "tiers.standard.burst"}},
		{"window not whole seconds", func(c *Config) {
			c.Tiers["standard"] = Tier{Limit: 1, Window: 1500 * time.Millisecond, Burst: 1}
		}, []string{"tiers.standard.window"}},
		{"burst above limit", func(c *Config) { c.Tiers["standard"] = Tier{Limit: 1, Window: time.Hour, Burst: 20} }, nil},
		{"negative burst", func(c *Config) { c.Tiers["standard"] = Tier{Limit: 1, Window: time.Second, Burst: -1} }, []string{"tiers.standard.burst"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.edit(&c)
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				var fe *fielderr.Error
				if !errors.As(e, &fe) {
					t.Fatalf("Validate returned %T %v, want *fielderr.Error", e, e)
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			slices.Sort(tc.paths)
			if d := cmp.Diff(got, tc.paths); d != "" {
				t.Errorf("Validate paths (-got +want):\n%s\nerrors: %v", d, c.Validate())
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		client  bool
		want    string // type of the limiter
		wantErr bool
	}{
		{"memory", func(c *Config) {}, false, "*ratelimit.Local", false},
		{"redis deny", func(c *Config) { c.Backend = "redis" }, true, "*ratelimit.Fallback", false},
		{"redis local", func(c *Config) { c.Backend = "redis"; c.OnRedisError = "local" }, true, "*ratelimit.Fallback", false},
		{"redis without client", func(c *Config) { c.Backend = "redis" }, false, "<nil>", true},
		{"invalid", func(c *Config) { c.Tiers = nil }, false, "<nil>", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			tc.edit(&c)
			var client RedisClient
			if tc.client {
				client, _ = redisClient(t, "127.0.0.1:1")
			}
			lim, err := New(c, client, nil, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New = %v, want error %v", err, tc.wantErr)
			}
			if got := fmt.Sprintf("%T", lim); got != tc.want {
				t.Errorf("New = %s, want %s", got, tc.want)
			}
		})
	}
}
