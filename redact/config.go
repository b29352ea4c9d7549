package redact

import (
	"errors"
	"unicode/utf8"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Config is the deployment's configuration of the response transform, as
// the config package reads it from YAML. The zero value is valid after
// Defaults: every limit at its default, and no hash key, so that a
// decision with a hash rule cannot be enforced (and is denied).
type Config struct {
	HashKey       secret.Ref `yaml:"hash_key" jsonschema_description:"Secret reference (env:NAME or file:/path) to at least 32 random bytes keying the HMAC-SHA256 of the hash action. Every replica needs the same key, and it must not change: hashed values are pseudonyms that join across responses only under one key. Absent: decisions that hash a field are denied."`
	MaskToken     string     `yaml:"mask_token" jsonschema_description:"What a masked value becomes (with keep_last, followed by the kept characters). Default ****."`
	MaxDepth      int        `yaml:"max_depth" jsonschema_description:"Deepest nesting of arrays and objects in a response body the gateway transforms; deeper bodies are refused (502). Default 64."`
	MaxTokenBytes int        `yaml:"max_token_bytes" jsonschema_description:"Largest single string, member name or number in a transformed body, and largest object being hashed, in bytes; larger ones are refused (502). Default 1048576 (1 MiB)."`
	MaxHeldBytes  int        `yaml:"max_held_bytes" jsonschema_description:"Most output held back while a filter decides a row or record, or before the value a filter's path selects; beyond it the response is refused (502). Default 4194304 (4 MiB)."`
	BufferBytes   int        `yaml:"buffer_bytes" jsonschema_description:"Output collected before it is passed to the client; a body whose output is smaller is checked whole first, so a refusal still becomes a clean error response. Default 32768."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.MaskToken == "" {
		c.MaskToken = DefaultMaskToken
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if c.MaxHeldBytes == 0 {
		c.MaxHeldBytes = DefaultMaxHeldBytes
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
}

// Validate reports every problem of the configuration at once. It expects
// Defaults to have run and the hash key reference to be resolved.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	// A reference that did not resolve (no value) is reported where it
	// was resolved.
	if n := len(c.HashKey.Value()); n > 0 && n < MinHashKeyBytes {
		add("hash_key", "must be at least %d bytes, got %d", MinHashKeyBytes, n)
	}
	if !utf8.ValidString(c.MaskToken) || len(c.MaskToken) > maxMaskToken {
		add("mask_token", "must be valid UTF-8 of at most %d bytes", maxMaskToken)
	}
	bound := func(path string, v, hi int) {
		if v < 1 || v > hi {
			add(path, "must be between 1 and %d, got %d", hi, v)
		}
	}
	bound("max_depth", c.MaxDepth, maxDepthLimit)
	bound("max_token_bytes", c.MaxTokenBytes, 1<<30)
	bound("max_held_bytes", c.MaxHeldBytes, 1<<30)
	bound("buffer_bytes", c.BufferBytes, 1<<30)
	return errors.Join(errs...)
}

// Options returns the Options of c, with the resolved hash key.
func (c Config) Options() Options {
	var key []byte
	if !c.HashKey.IsZero() {
		key = c.HashKey.Value()
	}
	return Options{
		HashKey:       key,
		MaskToken:     c.MaskToken,
		MaxDepth:      c.MaxDepth,
		MaxTokenBytes: c.MaxTokenBytes,
		MaxHeldBytes:  c.MaxHeldBytes,
		BufferBytes:   c.BufferBytes,
	}
}
