package ratelimit

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/redisconn"
)

// Backends.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"
)

// What a check does when Redis fails (Config.OnRedisError).
const (
	OnRedisErrorDeny  = "deny"
	OnRedisErrorLocal = "local"
)

// Bounds of a tier.
const (
	MinWindow = time.Second
	MaxWindow = 24 * time.Hour
	// MaxQuota bounds Limit and Burst: far beyond any sensible per-client
	// quota, and small enough that the Redis script's float arithmetic on
	// microsecond timestamps stays exact.
	MaxQuota = 1_000_000
)

// Config configures rate limiting. The zero value is not valid: at least
// one tier is required; everything else has defaults (see Defaults). A
// gateway without rate limits leaves the section out rather than
// configuring it empty.
type Config struct {
	Backend      string          `yaml:"backend" jsonschema_description:"Where buckets live: memory (default; each replica limits on its own) or redis (shared by replicas)."`
	Tiers        map[string]Tier `yaml:"tiers" jsonschema_description:"The tiers, by name (lower-case letters, digits, _ and -, at most 32). Routes and policy decisions pick a tier by name. At least one is required."`
	OnRedisError string          `yaml:"on_redis_error" jsonschema_description:"What a check does when Redis fails: deny (default; the request is answered 503) or local (limit on this replica alone until Redis answers again)."`
	KeyPrefix    string          `yaml:"key_prefix" jsonschema_description:"Prefix of every Redis key of the redis backend. Default crmgate:ratelimit:."`
	MaxKeys      int             `yaml:"max_keys" jsonschema_description:"Most buckets the memory backend (and the local fallback) keeps, about 200 bytes each; when full, the least recently used is dropped. Default 100000."`
	// Default picks the tier of callers by subject kind when neither the
	// route nor the policy decision nor the API key names one.
	Default map[string]string `yaml:"default" jsonschema_description:"Tier by subject kind (anonymous, user, service, api_key) for requests whose route, policy decision and API key name none. Anonymous callers are limited per client address, the others per identity. A kind not listed is not limited by default."`
	// FailedCredentials is the tier that counts refused credentials per
	// client address (brute force, credential stuffing).
	FailedCredentials string `yaml:"failed_credentials" jsonschema_description:"Tier counting refused API keys and bearer tokens per client address; once it is spent, that address gets 429 for every credential until the tier refills. Empty: not limited."`
	// Redis is how the gateway reaches Redis for backend: redis; New
	// takes the client, so Validate leaves this section to the wiring.
	Redis redisconn.Config `yaml:"redis" jsonschema_description:"The Redis server(s) of backend: redis."`
}

// Tier is one quota: Limit requests per Window on average, at most Burst
// at once. It is a token bucket of Burst tokens refilled at Limit/Window.
type Tier struct {
	Limit  int           `yaml:"limit" jsonschema_description:"Requests allowed per window, on average. Required."`
	Window time.Duration `yaml:"window" jsonschema_description:"The window of limit, a whole number of seconds from 1s to 24h. Default 1s."`
	Burst  int           `yaml:"burst" jsonschema_description:"Most requests allowed at once, after a quiet period. Default limit."`
}

// Defaults fills unset fields with their defaults, including those of
// every tier.
func (c *Config) Defaults() {
	if c.Backend == "" {
		c.Backend = BackendMemory
	}
	if c.OnRedisError == "" {
		c.OnRedisError = OnRedisErrorDeny
	}
	if c.KeyPrefix == "" {
		// redis.key_prefix means the same; either may be set.
		c.KeyPrefix = cmp.Or(c.Redis.KeyPrefix, "crmgate:ratelimit:")
	}
	if c.MaxKeys == 0 {
		c.MaxKeys = 100_000
	}
	for name, t := range c.Tiers {
		t.defaults()
		c.Tiers[name] = t
	}
	c.Redis.Defaults(c.KeyPrefix)
}

// defaults fills unset fields: Window 1s, Burst = Limit.
func (t *Tier) defaults() {
	if t.Window == 0 {
		t.Window = time.Second
	}
	if t.Burst == 0 {
		t.Burst = t.Limit
	}
}

// validTierName reports whether name may name a tier: [a-z0-9_-]{1,32}. A
// name is written as is into the sf-string of the RateLimit headers
// (RFC 9651 §3.3.3) and into Redis keys.
func validTierName(name string) bool {
	if len(name) < 1 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	switch c.Backend {
	case BackendMemory, BackendRedis:
	default:
		add("backend", "%q is not allowed (memory, redis)", c.Backend)
	}
	switch c.OnRedisError {
	case OnRedisErrorDeny, OnRedisErrorLocal:
	default:
		add("on_redis_error", "%q is not allowed (deny, local)", c.OnRedisError)
	}
	if c.KeyPrefix == "" || strings.ContainsAny(c.KeyPrefix, " \t\r\n*?[]{}") {
		add("key_prefix", "%q is not allowed (non-empty, no spaces, no * ? [ ] { })", c.KeyPrefix)
	}
	if c.MaxKeys < 1 {
		add("max_keys", "must be positive, got %d", c.MaxKeys)
	}
	if len(c.Tiers) == 0 {
		add("tiers", "at least one tier is required (e.g. standard: {limit: 10})")
	}
	for _, kind := range slices.Sorted(maps.Keys(c.Default)) {
		switch kind {
		case "anonymous", "user", "service", "api_key":
		default:
			add("default."+kind, "%q is not a subject kind (anonymous, user, service, api_key)", kind)
		}
		if _, ok := c.Tiers[c.Default[kind]]; !ok {
			add("default."+kind, "tier %q is not defined under tiers", c.Default[kind])
		}
	}
	if _, ok := c.Tiers[c.FailedCredentials]; c.FailedCredentials != "" && !ok {
		add("failed_credentials", "tier %q is not defined under tiers", c.FailedCredentials)
	}
	names := make([]string, 0, len(c.Tiers))
	for name := range c.Tiers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := "tiers." + name
		if !validTierName(name) {
			add(path, "%q is not a tier name (1 to 32 lower-case letters, digits, _ and -)", name)
		}
		errs = append(errs, fielderr.Prefix(path, c.Tiers[name].validate()))
	}
	return errors.Join(errs...)
}

func (t Tier) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if t.Limit < 1 || t.Limit > MaxQuota {
		add("limit", "must be from 1 to %d, got %d", MaxQuota, t.Limit)
	}
	switch {
	case t.Window < MinWindow || t.Window > MaxWindow:
		add("window", "must be from %s to %s, got %s", MinWindow, MaxWindow, t.Window)
	case t.Window%time.Second != 0:
		// The RateLimit-Policy header states the window in whole seconds.
		add("window", "must be a whole number of seconds, got %s", t.Window)
	}
	if t.Burst < 1 || t.Burst > MaxQuota {
		add("burst", "must be from 1 to %d, got %d", MaxQuota, t.Burst)
	}
	return errors.Join(errs...)
}
