package alert

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// base is on a bucket boundary of every window the tests use (a whole
// hour), so that offsets from it say exactly which bucket they fall in.
var base = time.Unix(1_800_000_000, 0).UTC()

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// oneRule is a config of r alone, with r's defaults applied by New.
func oneRule(r Rule) Config {
	return Config{Rules: []Rule{r}}
}

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg, func() time.Time { return base }, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// denied is a denied request of sub from ip at base+at.
func denied(sub, ip string, at time.Duration) Observation {
	return Observation{Time: base.Add(at), Type: TypeHTTPRequest, Outcome: "denied", Reason: "policy", Status: 403,
		SubjectID: sub, ClientIP: ip, RequestID: fmt.Sprintf("req-%s-%s-%d", sub, ip, at)}
}

// fired lists the names of the rules of alerts.
func fired(alerts []Alert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, a.Rule)
	}
	return out
}

func stats(e *Engine, rule string) RuleStats {
	for _, s := range e.Stats() {
		if s.Rule == rule {
			return s
		}
	}
	panic("no rule " + rule)
}
