package policy

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// testTime is the fixed time of test requests.
var testTime = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// testConfig is a defaulted configuration for dir.
func testConfig(dir, entrypoint string) Config {
	// A decision deadline that a loaded machine running the race detector
	// does not reach by accident; the fixture's endless rule still does.
	cfg := Config{Dir: dir, Entrypoint: entrypoint, Debounce: 20 * time.Millisecond, EvalTimeout: 500 * time.Millisecond}
	cfg.Defaults()
	return cfg
}

// newEngine loads dir and fails the test if it does not load.
func newEngine(t testing.TB, cfg Config, o Options, entrypoints ...string) *Engine {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	e, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := e.Load(context.Background(), entrypoints...); err != nil {
		t.Fatalf("Load(%s): %v", cfg.Dir, err)
	}
	return e
}

// reqScope is a request scope for method and target on route id.
func reqScope(method, target, routeID string, params map[string]string) *scope.Scope {
	u := httptest.NewRequest(method, target, nil).URL
	return &scope.Scope{
		ID:       "req-1",
		Start:    testTime,
		ClientIP: netip.MustParseAddr("203.0.113.7"),
		Path:     u.Path,
		Method:   method,
		Route:    &scope.Route{ID: routeID, Tags: []string{"pii"}},
		Params:   params,
	}
}

// writeFiles writes name → content below dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
