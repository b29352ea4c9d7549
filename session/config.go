package session

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Store kinds.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Redis modes.
const (
	RedisSingle   = "single"
	RedisSentinel = "sentinel"
	RedisCluster  = "cluster"
)

// MinKeyBytes is the least length of a key ring secret: the AES-256 and
// HMAC-SHA256 subkeys are derived from it, so it must carry 256 bits.
const MinKeyBytes = 32

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
	RefreshBefore   time.Duration `yaml:"refresh_before" jsonschema_description:"Refresh OIDC tokens this long before they expire. Default 1m."`
	RefreshLockTTL  time.Duration `yaml:"refresh_lock_ttl" jsonschema_description:"Longest a token refresh may hold the session's refresh lock; other requests wait for it. Default 30s."`
	Redis           RedisConfig   `yaml:"redis" jsonschema_description:"The Redis server(s) of store: redis."`
}

// RedisConfig says how to reach Redis.
type RedisConfig struct {
	Mode        string         `yaml:"mode" jsonschema_description:"single (default), sentinel or cluster."`
	Addrs       []string       `yaml:"addrs" jsonschema_description:"host:port of the server (single), the sentinels (sentinel) or some cluster nodes (cluster)."`
	MasterName  string         `yaml:"master_name" jsonschema_description:"Name of the master the sentinels watch (sentinel only)."`
	Username    string         `yaml:"username" jsonschema_description:"ACL user name. Empty: the default user."`
	Password    secret.Ref     `yaml:"password" jsonschema_description:"Secret reference (env:NAME or file:/path) to the password. Empty: none."`
	DB          int            `yaml:"db" jsonschema_description:"Database number (single and sentinel only). Default 0."`
	KeyPrefix   string         `yaml:"key_prefix" jsonschema_description:"Prefix of every key and channel name the session store uses. Default crmgate:session:."`
	DialTimeout time.Duration  `yaml:"dial_timeout" jsonschema_description:"Longest connect to Redis. Default 2s."`
	Timeout     time.Duration  `yaml:"timeout" jsonschema_description:"Longest read or write of one command. Default 1s."`
	TLS         RedisTLSConfig `yaml:"tls" jsonschema_description:"TLS to Redis."`
}

// RedisTLSConfig configures TLS to Redis.
type RedisTLSConfig struct {
	Enabled    bool   `yaml:"enabled" jsonschema_description:"Connect with TLS."`
	CAFile     string `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that sign the server certificate. Empty: the system roots."`
	ServerName string `yaml:"server_name" jsonschema_description:"Name to verify in the server certificate instead of the address's host."`
	ClientCert string `yaml:"client_cert" jsonschema_description:"PEM client certificate, for servers that require one."`
	ClientKey  string `yaml:"client_key" jsonschema_description:"PEM private key of client_cert."`
}

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
	setDur(&c.RefreshBefore, time.Minute)
	setDur(&c.RefreshLockTTL, 30*time.Second)
	r := &c.Redis
	if r.Mode == "" {
		r.Mode = RedisSingle
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = "crmgate:session:"
	}
	setDur(&r.DialTimeout, 2*time.Second)
	setDur(&r.Timeout, time.Second)
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
		errs = append(errs, fielderr.Prefix("redis", c.Redis.validate()))
	default:
		add("store", "%q is not allowed (memory, redis)", c.Store)
	}
	if c.RefreshBefore < 0 {
		add("refresh_before", "must not be negative, got %s", c.RefreshBefore)
	}
	if c.RefreshLockTTL <= 0 {
		add("refresh_lock_ttl", "must be positive, got %s", c.RefreshLockTTL)
	}
	return errors.Join(errs...)
}

func (r RedisConfig) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	switch r.Mode {
	case RedisSingle:
		if len(r.Addrs) != 1 {
			add("addrs", "single mode takes exactly one host:port, got %d", len(r.Addrs))
		}
	case RedisSentinel:
		if r.MasterName == "" {
			add("master_name", "required in sentinel mode")
		}
	case RedisCluster:
		if r.DB != 0 {
			add("db", "must be 0 in cluster mode")
		}
	default:
		add("mode", "%q is not allowed (single, sentinel, cluster)", r.Mode)
	}
	if r.Mode != RedisSentinel && r.MasterName != "" {
		add("master_name", "only used in sentinel mode")
	}
	if len(r.Addrs) == 0 && r.Mode != RedisSingle {
		add("addrs", "at least one host:port is required")
	}
	for i, a := range r.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(fmt.Sprintf("addrs[%d]", i), "%q is not host:port (e.g. 127.0.0.1:6379)", a)
		}
	}
	if r.DB < 0 {
		add("db", "must not be negative")
	}
	if r.KeyPrefix == "" || strings.ContainsAny(r.KeyPrefix, " \t\r\n*?[]{}") {
		add("key_prefix", "%q is not allowed (non-empty, no spaces, no * ? [ ] { })", r.KeyPrefix)
	}
	if r.DialTimeout <= 0 {
		add("dial_timeout", "must be positive, got %s", r.DialTimeout)
	}
	if r.Timeout <= 0 {
		add("timeout", "must be positive, got %s", r.Timeout)
	}
	t := r.TLS
	if !t.Enabled && (t.CAFile != "" || t.ServerName != "" || t.ClientCert != "" || t.ClientKey != "") {
		add("tls.enabled", "ca_file, server_name, client_cert and client_key need enabled: true")
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		add("tls.client_key", "client_cert and client_key go together")
	}
	return errors.Join(errs...)
}

// RedisOptions turns the configuration into go-redis options for
// redis.NewUniversalClient; it reads the TLS files but connects nowhere.
// The client it yields reconnects by itself after Redis comes back.
func (r RedisConfig) RedisOptions() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:        r.Addrs,
		MasterName:   r.MasterName,
		Username:     r.Username,
		DB:           r.DB,
		DialTimeout:  r.DialTimeout,
		ReadTimeout:  r.Timeout,
		WriteTimeout: r.Timeout,
		// A failed command is retried once on a fresh connection; beyond
		// that the request fails closed rather than queueing behind a
		// Redis that is down.
		MaxRetries:    1,
		DialerRetries: 1,
		// Request deadlines bound Redis calls too.
		ContextTimeoutEnabled: true,
		IsClusterMode:         r.Mode == RedisCluster,
	}
	if v := r.Password.Value(); v != nil {
		o.Password = string(v)
		if r.Mode == RedisSentinel {
			o.SentinelPassword = string(v)
		}
	}
	if r.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.TLS.ServerName}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(r.TLS.CAFile)
			if err != nil {
				return nil, fielderr.New("tls.ca_file", "%v", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fielderr.New("tls.ca_file", "%s holds no PEM certificate", r.TLS.CAFile)
			}
		}
		if r.TLS.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(r.TLS.ClientCert, r.TLS.ClientKey)
			if err != nil {
				return nil, fielderr.New("tls.client_cert", "%v", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		o.TLSConfig = tc
	}
	return o, nil
}
