package session

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/redisconn"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// Store kinds.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Redis modes (see redisconn).
const (
	RedisSingle   = redisconn.Single
	RedisSentinel = redisconn.Sentinel
	RedisCluster  = redisconn.Cluster
)

// MinKeyBytes is the least length of a key ring secret: the AES-256 and
// HMAC-SHA256 subkeys are derived from it, so it must carry 256 bits.
const MinKeyBytes = 32

// MaxCacheEntries bounds Config.CacheEntries: a million decoded sessions
// already take gigabytes.
const MaxCacheEntries = 1_000_000

// CookiePrefix is the prefix every session cookie name keeps: browsers then
// accept the cookie only from a secure origin with Path=/ and no Domain, so
// no other host can set or shadow it (RFC 6265bis §4.1.3.2).
const CookiePrefix = "__Host-"

// Config configures sessions. The zero value is not valid: at least one
// key is required; everything else has defaults (see Defaults).
type Config struct {
	CookieName      string        `yaml:"cookie_name" jsonschema_description:"Name of the session cookie; must start with __Host-. Default __Host-crmgate."`
	IdleTimeout     time.Duration `yaml:"idle_timeout" jsonschema_description:"A session ends after this long without a saved request. Default 30m."`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout" jsonschema_description:"A session ends this long after login, however active. Default 12h."`
	Keys            []secret.Ref  `yaml:"keys" jsonschema_description:"Secret references (env:NAME or file:/path) to the session keys, each at least 32 bytes. The first seals new writes and issues new cookies; the others are still accepted. Rotate by putting a new key first; a removed key ends the sessions it issued."`
	Store           string        `yaml:"store" jsonschema_description:"Where sessions live: memory (default; one replica only) or redis (shared by replicas)."`
	MaxEntries      int           `yaml:"max_entries" jsonschema_description:"Most sessions the memory store keeps; when full, the session closest to expiry is dropped. Default 100000."`
	CacheEntries    int           `yaml:"cache_entries" jsonschema_description:"Most decoded sessions each replica keeps in memory, so that a request skips decrypting and decoding its session (every request still reads the store, so revocation and expiry are seen at once). Each costs about the size of its record (2 to 4 KB with the provider's tokens); the sessions in use are kept, the others evicted. Default 10000, at most 1000000."`
	RefreshBefore   time.Duration `yaml:"refresh_before" jsonschema_description:"Refresh OIDC tokens this long before they expire. Default 1m."`
	RefreshLockTTL  time.Duration `yaml:"refresh_lock_ttl" jsonschema_description:"Longest a token refresh may hold the session's refresh lock; other requests wait for it. Default 30s."`
	Redis           RedisConfig   `yaml:"redis" jsonschema_description:"The Redis server(s) of store: redis."`
	// Fingerprint is the client fingerprint bound to each session at
	// login; the policy sees how a request's fingerprint compares.
	Fingerprint fingerprint.Config `yaml:"fingerprint" jsonschema_description:"The client fingerprint bound to a session at sign-in (TLS JA4, browser family and version, client network) and compared on every request; the policy sees what changed (input.session.fingerprint) and decides whether to allow, step up or revoke."`
}

// RedisConfig says how to reach Redis (see redisconn.Config).
type RedisConfig = redisconn.Config

// RedisTLSConfig configures TLS to Redis.
type RedisTLSConfig = redisconn.TLSConfig

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.CookieName == "" {
		c.CookieName = CookiePrefix + "crmgate"
	}
	setDur(&c.IdleTimeout, 30*time.Minute)
	setDur(&c.AbsoluteTimeout, 12*time.Hour)
	if c.Store == "" {
		c.Store = StoreMemory
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = 100_000
	}
	if c.CacheEntries == 0 {
		c.CacheEntries = DefaultCacheEntries
	}
	setDur(&c.RefreshBefore, time.Minute)
	setDur(&c.RefreshLockTTL, 30*time.Second)
	c.Redis.Defaults("crmgate:session:")
	c.Fingerprint.Defaults()
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// cookieTokenRe is an RFC 6265 §4.1.1 cookie-name (an RFC 9110 token).
var cookieTokenRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	switch {
	case !strings.HasPrefix(c.CookieName, CookiePrefix):
		add("cookie_name", "%q must start with %s so that browsers bind it to this host over HTTPS", c.CookieName, CookiePrefix)
	case len(c.CookieName) == len(CookiePrefix) || !cookieTokenRe.MatchString(c.CookieName):
		add("cookie_name", "%q is not a cookie name (%s followed by letters, digits and - _ . and the like)", c.CookieName, CookiePrefix)
	}
	if c.IdleTimeout <= 0 {
		add("idle_timeout", "must be positive, got %s", c.IdleTimeout)
	}
	if c.AbsoluteTimeout <= 0 {
		add("absolute_timeout", "must be positive, got %s", c.AbsoluteTimeout)
	} else if c.IdleTimeout > c.AbsoluteTimeout {
		add("idle_timeout", "%s is longer than absolute_timeout %s", c.IdleTimeout, c.AbsoluteTimeout)
	}
	if len(c.Keys) == 0 {
		add("keys", "at least one key is required (e.g. env:CRMGATE_SESSION_KEY holding `openssl rand -base64 48`)")
	}
	seen := map[string]int{}
	for i, k := range c.Keys {
		path := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.IsZero():
			add(path, "empty; a secret reference (env:NAME or file:/path) is required")
		case k.Value() == nil:
			// Not resolved: the config package reports why at this path.
		case len(k.Value()) < MinKeyBytes:
			add(path, "secret %s is %d bytes, at least %d are required", k, len(k.Value()), MinKeyBytes)
		default:
			if j, dup := seen[string(k.Value())]; dup {
				add(path, "the same key as keys[%d]", j)
			}
			seen[string(k.Value())] = i
		}
	}
	switch c.Store {
	case StoreMemory:
		if c.MaxEntries < 1 {
			add("max_entries", "must be positive, got %d", c.MaxEntries)
		}
	case StoreRedis:
		errs = append(errs, fielderr.Prefix("redis", c.Redis.Validate()))
	default:
		add("store", "%q is not allowed (memory, redis)", c.Store)
	}
	if c.CacheEntries < 1 || c.CacheEntries > MaxCacheEntries {
		add("cache_entries", "must be between 1 and %d, got %d", MaxCacheEntries, c.CacheEntries)
	}
	if c.RefreshBefore < 0 {
		add("refresh_before", "must not be negative, got %s", c.RefreshBefore)
	}
	if c.RefreshLockTTL <= 0 {
		add("refresh_lock_ttl", "must be positive, got %s", c.RefreshLockTTL)
	}
	errs = append(errs, fielderr.Prefix("fingerprint", c.Fingerprint.Validate()))
	return errors.Join(errs...)
}
