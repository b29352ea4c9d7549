package redact

import (
	"strings"
	"testing"

	"github.com/crmgate/crmgate/secret"
)

func TestConfig(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() of the defaults = %v", err)
	}
	o := c.Options()
	if o.HashKey != nil || o.MaskToken != DefaultMaskToken || o.MaxDepth != DefaultMaxDepth || o.MaxHeldBytes != DefaultMaxHeldBytes {
		t.Errorf("Options() = %+v", o)
	}
	if _, err := Compile([]Rule{{Path: "$.a", Action: ActionHash}}, nil, o); err == nil {
		t.Error("a hash rule compiled without a key")
	}

	key := []byte("Xq3v9LmT2pZr8WcYb6NhKd4FsJg7AeUo")
	c.HashKey = secret.FromValue(key)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if _, err := Compile([]Rule{{Path: "$.a", Action: ActionHash}}, nil, c.Options()); err != nil {
		t.Errorf("Compile with the configured key: %v", err)
	}

	bad := Config{HashKey: secret.FromValue([]byte("short")), MaskToken: "\xff", MaxDepth: -1, MaxTokenBytes: 1 << 31, MaxHeldBytes: 1, BufferBytes: 1}
	err := bad.Validate()
	for _, w := range []string{"hash_key: must be at least 32 bytes", "mask_token", "max_depth", "max_token_bytes"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v, want it to mention %q", err, w)
		}
	}
}
