package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/config"
)

// demoKey is one API key of demo.json.
type demoKey struct {
	Name   string   `json:"name"`
	Key    string   `json:"key"`
	Scopes []string `json:"scopes"`
	Tier   string   `json:"tier"`
}

// demoKeySpecs are the demo's API keys, as PRODUCT.md's demo.json lists them.
var demoKeySpecs = []demoKey{
	{Name: "integration-read", Scopes: []string{"contacts:read", "deals:read"}, Tier: "standard"},
	{Name: "integration-write", Scopes: []string{"contacts:read", "contacts:write"}, Tier: "standard"},
}

// demoAPIKeys makes sure the demo's API keys exist in the configured key
// store and returns them in plaintext. The plaintexts are kept in the data
// folder (demo-apikeys.json, 0600) so that a restart shows the same keys;
// a key that no longer verifies (revoked, deleted, another pepper) is
// created again.
func demoAPIKeys(ctx context.Context, f *config.File, dir string) ([]demoKey, error) {
	path := filepath.Join(dir, "demo-apikeys.json")
	var kept []demoKey
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &kept)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	log := slog.New(slog.DiscardHandler)
	store, closeStore, err := openKeyStore(ctx, f.APIKeys, log)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	m, err := apikey.New(store, f.APIKeys.Pepper.Value(), time.Now, log)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	out := make([]demoKey, 0, len(demoKeySpecs))
	for _, spec := range demoKeySpecs {
		k := spec
		for _, old := range kept {
			if old.Name == spec.Name {
				if _, err := m.Verify(ctx, old.Key); err == nil {
					k.Key = old.Key
				}
			}
		}
		if k.Key == "" {
			key, _, err := m.Create(ctx, apikey.Spec{Name: spec.Name, Owner: "demo", Scopes: spec.Scopes, Tier: spec.Tier})
			if err != nil {
				return nil, fmt.Errorf("demo API key %s: %w", spec.Name, err)
			}
			k.Key = key
		}
		out = append(out, k)
	}
	if err := writeJSONAtomic(path, out); err != nil {
		return nil, err
	}
	return out, nil
}
