package policy

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/scope"
)

// reuseRequest is a signed-in user's request as the gateway sees it; edit
// changes one thing about it.
func reuseRequest(e *Engine, edit func(s *scope.Scope, hdr map[string]string, target *string)) *Input {
	sub := &scope.Subject{Kind: scope.KindUser, ID: "alice", Email: "alice@example.com", Roles: []string{"sales"},
		AMR: []string{"pwd"}, AuthTime: testTime.Add(-time.Hour), Claims: map[string]any{"team": "north", "level": 2}}
	target := "/api/contacts/42?fields=name"
	s := demoScope("GET", "contacts.item", "/api/contacts/42", sub)
	hdr := map[string]string{"User-Agent": "Mozilla/5.0 Chrome/130.0", "Accept": "application/json"}
	if edit != nil {
		edit(s, hdr, &target)
	}
	r := httptest.NewRequest(s.Method, "https://crm.example.com"+target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return e.Input(s, r)
}

func reuseEngine(t *testing.T, dir string, edit func(*Config)) (*Engine, *prometheus.Registry) {
	t.Helper()
	cfg := testConfig(dir, "")
	cfg.EvalTimeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	reg := prometheus.NewRegistry()
	return newEngine(t, cfg, Options{Registerer: reg}), reg
}

// A decision is reused for a request whose input differs only in its
// request id, within the same second; any other difference, however
// small, is a new evaluation, and so is the next second.
func TestDecisionReuse(t *testing.T) {
	e, reg := reuseEngine(t, shippedDir, nil)
	ctx := context.Background()
	first := e.Decide(ctx, reuseRequest(e, nil), "")
	if first.Failed() || first.Reused {
		t.Fatalf("first decision: %+v", first)
	}
	again := e.Decide(ctx, reuseRequest(e, func(s *scope.Scope, _ map[string]string, _ *string) {
		s.ID = "req-2"
		s.Start = s.Start.Add(900 * time.Millisecond)
	}), "")
	if hits := reuseCount(t, reg, reuseHit); hits != 1 {
		t.Errorf("crmgate_policy_decision_reuse_total{result=hit} = %v, want 1", hits)
	}
	if !again.Reused || again.Allow != first.Allow || again.Reason != first.Reason || len(again.Redact) != len(first.Redact) || again.Revision != first.Revision {
		t.Fatalf("same input, other request id: %+v, want %+v reused", again, first)
	}

	edits := map[string]func(s *scope.Scope, hdr map[string]string, target *string){
		"next second": func(s *scope.Scope, _ map[string]string, _ *string) { s.Start = s.Start.Add(time.Second) },
		"method":      func(s *scope.Scope, _ map[string]string, _ *string) { s.Method = "HEAD" },
		"path":        func(s *scope.Scope, _ map[string]string, _ *string) { s.Path = "/api/contacts/43" },
		"route param": func(s *scope.Scope, _ map[string]string, _ *string) { s.Params = map[string]string{"id": "43"} },
		"route": func(s *scope.Scope, _ map[string]string, _ *string) {
			s.Route = &scope.Route{ID: "contacts.list", Tags: []string{"pii"}}
		},
		"route tags":              func(s *scope.Scope, _ map[string]string, _ *string) { s.Route = &scope.Route{ID: "contacts.item"} },
		"query value":             func(_ *scope.Scope, _ map[string]string, t *string) { *t = "/api/contacts/42?fields=ssn" },
		"query split differently": func(_ *scope.Scope, _ map[string]string, t *string) { *t = "/api/contacts/42?fields=na&me" },
		"header value":            func(_ *scope.Scope, h map[string]string, _ *string) { h["Accept"] = "text/csv" },
		"header added":            func(_ *scope.Scope, h map[string]string, _ *string) { h["Origin"] = "https://evil.example" },
		"user agent":              func(_ *scope.Scope, h map[string]string, _ *string) { h["User-Agent"] = "curl/8.5.0" },
		"client address":          func(s *scope.Scope, _ map[string]string, _ *string) { s.ClientIP = s.ClientIP.Next() },
		"subject":                 func(s *scope.Scope, _ map[string]string, _ *string) { s.Subject.ID = "mallory" },
		"role":                    func(s *scope.Scope, _ map[string]string, _ *string) { s.Subject.Roles = []string{"admin"} },
		"roles joined":            func(s *scope.Scope, _ map[string]string, _ *string) { s.Subject.Roles = []string{"sal", "es"} },
		"second factor":           func(s *scope.Scope, _ map[string]string, _ *string) { s.Subject.AMR = []string{"pwd", "otp"} },
		"auth time":               func(s *scope.Scope, _ map[string]string, _ *string) { s.Subject.AuthTime = testTime },
		"claim": func(s *scope.Scope, _ map[string]string, _ *string) {
			s.Subject.Claims = map[string]any{"team": "south", "level": 2}
		},
		"fingerprint mismatch": func(s *scope.Scope, _ map[string]string, _ *string) {
			s.Session.Fingerprint = scope.FingerprintCheck{Bound: true, Changed: []string{"ja4"}}
		},
		"session idle": func(s *scope.Scope, _ map[string]string, _ *string) { s.Session.LastSeen = s.Start },
		"no session":   func(s *scope.Scope, _ map[string]string, _ *string) { s.Session = nil },
		"api key caller": func(s *scope.Scope, _ map[string]string, _ *string) {
			s.Subject = &scope.Subject{Kind: scope.KindAPIKey, ID: "alice", APIKey: &scope.APIKey{ID: "k1", Scopes: []string{"contacts:read"}, Tier: "standard"}}
		},
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			in := reuseRequest(e, edit)
			d := e.Decide(ctx, in, "")
			if d.Reused {
				t.Fatalf("decision reused across a change of %s", name)
			}
			// The reused table now holds this input's decision too: the
			// first input still gets its own.
			if d := e.Decide(ctx, reuseRequest(e, nil), ""); d.Reason != first.Reason || d.Allow != first.Allow {
				t.Fatalf("after %s, the first input's decision is %+v, want %+v", name, d, first)
			}
		})
	}
}

// Decisions that failed are not kept; a set calling a non-deterministic
// built-in, and reuse: off, reuse nothing; a reload starts an empty
// table; the table never holds more than reuse_entries decisions.
func TestDecisionReuseLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("non-deterministic built-in", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"authz.rego": `package crmgate.authz

decision := {"allow": rand.intn("x", 10) < 100}
`})
		e, reg := reuseEngine(t, dir, nil)
		for range 3 {
			if d := e.Decide(ctx, reuseRequest(e, nil), ""); d.Reused || d.Failed() {
				t.Fatalf("decision %+v of a set calling rand.intn", d)
			}
		}
		if n := reuseCount(t, reg, reuseMiss); n != 0 {
			t.Errorf("%v reuse misses counted for a set that is never reused", n)
		}
	})
	t.Run("time.now_ns", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"authz.rego": `package crmgate.authz

decision := {"allow": time.now_ns() > 0}
`})
		e, _ := reuseEngine(t, dir, nil)
		e.Decide(ctx, reuseRequest(e, nil), "")
		if d := e.Decide(ctx, reuseRequest(e, nil), ""); d.Reused {
			t.Fatal("a set calling time.now_ns was reused")
		}
	})
	t.Run("off", func(t *testing.T) {
		e, _ := reuseEngine(t, shippedDir, func(c *Config) { c.Reuse = ReuseOff })
		e.Decide(ctx, reuseRequest(e, nil), "")
		if d := e.Decide(ctx, reuseRequest(e, nil), ""); d.Reused {
			t.Fatal("reuse: off reused a decision")
		}
	})
	t.Run("failed decisions", func(t *testing.T) {
		e, _ := reuseEngine(t, "testdata/basic", func(c *Config) { c.Entrypoint = "data.fixture.decision" })
		in := func() *Input {
			return e.Input(reqScope("GET", "/", "allow_string", nil), httptest.NewRequest("GET", "/", nil))
		}
		e.Decide(ctx, in(), "")
		if d := e.Decide(ctx, in(), ""); d.Reused || !d.Failed() {
			t.Fatalf("an invalid decision was kept: %+v", d)
		}
	})
	t.Run("reload", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{"authz.rego": "package crmgate.authz\n\ndecision := {\"allow\": true, \"reason\": \"one\"}\n"})
		e, _ := reuseEngine(t, dir, nil)
		e.Decide(ctx, reuseRequest(e, nil), "")
		if d := e.Decide(ctx, reuseRequest(e, nil), ""); !d.Reused {
			t.Fatal("not reused before the reload")
		}
		writeFiles(t, dir, map[string]string{"authz.rego": "package crmgate.authz\n\ndecision := {\"allow\": false, \"reason\": \"two\"}\n"})
		if err := e.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if d := e.Decide(ctx, reuseRequest(e, nil), ""); d.Reused || d.Reason != "two" || d.Allow {
			t.Fatalf("after the reload: %+v, want the new set's deny", d)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		e, _ := reuseEngine(t, shippedDir, func(c *Config) { c.ReuseEntries = 8 })
		for i := range 100 {
			e.Decide(ctx, reuseRequest(e, func(s *scope.Scope, _ map[string]string, _ *string) {
				s.Path = "/api/contacts/" + strings.Repeat("9", i+1)
			}), "")
		}
		set := e.active.Load()
		set.reuse.mu.Lock()
		n := len(set.reuse.m)
		set.reuse.mu.Unlock()
		if n != 8 {
			t.Fatalf("the table holds %d decisions, want the bound 8", n)
		}
	})
}

// BenchmarkDecideReused is BenchmarkDecide's first request decided again
// with a new request id in the same second (a hit), against evaluating it.
func BenchmarkDecideReused(b *testing.B) {
	for _, mode := range []string{ReuseOff, ReuseOn} {
		b.Run("reuse_"+mode, func(b *testing.B) {
			cfg := testConfig(shippedDir, "")
			cfg.EvalTimeout = 5 * time.Second
			cfg.Reuse = mode
			e := newEngine(b, cfg, Options{})
			in := reuseRequest(e, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(ctx, in, ""); d.Failed() {
					b.Fatal(d.Error)
				}
			}
		})
	}
}

// reuseCount reads crmgate_policy_decision_reuse_total{result}.
func reuseCount(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "crmgate_policy_decision_reuse_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no crmgate_policy_decision_reuse_total{result=%q}", result)
	return 0
}
