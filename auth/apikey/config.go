package apikey

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/redisconn"
	"github.com/crmgate/crmgate/secret"
)

// Store kinds.
const (
	StoreFile  = "file"
	StoreRedis = "redis"
)

// DefaultFile is the key file of store: file unless configured otherwise.
const DefaultFile = "apikeys.json"

// Config configures API keys. The zero value is not valid: the pepper is
// required; everything else has defaults (see Defaults).
type Config struct {
	Store   string           `yaml:"store" jsonschema_description:"Where keys live: file (default; the gateway and the crmgate apikey command share one JSON file) or redis (shared by replicas)."`
	File    string           `yaml:"file" jsonschema_description:"Path of the key file of store: file, written with mode 0600. Changes by the crmgate apikey command take effect in a running gateway within a second. Default apikeys.json."`
	Pepper  secret.Ref       `yaml:"pepper" jsonschema_description:"Secret reference (env:NAME or file:/path) to at least 32 bytes that key the HMAC of every stored key secret; every replica and the crmgate apikey command need the same. Changing it invalidates every key."`
	Sources []string         `yaml:"sources" jsonschema_description:"Where requests carry a key: header:<Name> (the whole header value), authorization:<Scheme> (Authorization: <Scheme> <key>) or basic (HTTP Basic, the key as password or as user name with an empty password). A request with more than one is refused. Default header:X-API-Key and authorization:ApiKey."`
	Redis   redisconn.Config `yaml:"redis" jsonschema_description:"The Redis server(s) of store: redis. Default key prefix crmgate:apikey:."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Store == "" {
		c.Store = StoreFile
	}
	if c.File == "" {
		c.File = DefaultFile
	}
	if c.Sources == nil {
		c.Sources = []string{"header:X-API-Key", "authorization:ApiKey"}
	}
	c.Redis.Defaults(DefaultRedisPrefix)
}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and secret references to be resolved; it touches
// neither the file system nor the network.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	switch c.Store {
	case StoreFile:
		if c.File == "" || strings.ContainsRune(c.File, 0) || strings.HasSuffix(c.File, "/") {
			add("file", "%q is not a file path", c.File)
		}
	case StoreRedis:
		errs = append(errs, fielderr.Prefix("redis", c.Redis.Validate()))
	default:
		add("store", "%q is not allowed (file, redis)", c.Store)
	}
	switch p := c.Pepper; {
	case p.IsZero():
		add("pepper", "required: a secret reference (env:NAME or file:/path) to at least %d random bytes, e.g. `openssl rand -base64 48`", MinPepperBytes)
	case p.Value() == nil:
		// Not resolved: the config package reports why at this path.
	case len(p.Value()) < MinPepperBytes:
		add("pepper", "secret %s is %d bytes, at least %d are required", p, len(p.Value()), MinPepperBytes)
	}
	if len(c.Sources) == 0 {
		add("sources", "at least one source is required (e.g. header:X-API-Key)")
	}
	type parsed struct {
		i   int
		src Source
	}
	var seen []parsed
	for i, s := range c.Sources {
		path := fmt.Sprintf("sources[%d]", i)
		src, err := ParseSource(s)
		if err != nil {
			add(path, "%v", err)
			continue
		}
		for _, o := range seen {
			if o.src.same(src) {
				add(path, "%q reads the same place as sources[%d]", s, o.i)
			}
		}
		seen = append(seen, parsed{i, src})
	}
	return errors.Join(errs...)
}

// ParsedSources returns Sources parsed, for Extract. It expects Validate
// to have passed.
func (c Config) ParsedSources() ([]Source, error) {
	out := make([]Source, 0, len(c.Sources))
	for i, s := range c.Sources {
		src, err := ParseSource(s)
		if err != nil {
			return nil, fielderr.New(fmt.Sprintf("sources[%d]", i), "%v", err)
		}
		out = append(out, src)
	}
	return out, nil
}
