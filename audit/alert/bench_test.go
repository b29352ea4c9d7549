package alert

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// benchConfig is the shipped rules and four more: ten rules, six of them
// on http.request.
func benchConfig() Config {
	rules := append(DefaultRules(),
		Rule{Name: "denials-per-ip", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"denied"}}, Key: KeyIP,
			Threshold: 100, Window: 10 * time.Minute},
		Rule{Name: "rate-limited", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"rate_limited"}, Status: []int{429}},
			Threshold: 50, Window: 5 * time.Minute},
		Rule{Name: "upstream-errors", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"upstream_error"}}, Key: KeyIP,
			Threshold: 50, Window: 5 * time.Minute},
		Rule{Name: "refresh-failures", Match: Match{Type: "auth.refresh.failure"}, Key: KeySubject,
			Threshold: 5, Window: 10 * time.Minute},
	)
	return Config{Rules: rules}
}

const benchKeys = 100_000

// benchObs are requests of benchKeys subjects from as many addresses.
func benchObs(outcome string, records int) []Observation {
	obs := make([]Observation, benchKeys)
	for i := range obs {
		obs[i] = Observation{Type: TypeHTTPRequest, Outcome: outcome, Status: 200, Records: records,
			SubjectID: fmt.Sprintf("user-%d@example.com", i), ClientIP: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255),
			RequestID: fmt.Sprintf("01J%023d", i)}
	}
	return obs
}

// benchEngine is an Engine whose rules already track the keys of obs, with
// room to spare: shards fill unevenly, and a full one would drop and add
// keys on every observation (BenchmarkObserveNewKeys measures that).
func benchEngine(b *testing.B, obs []Observation) *Engine {
	cfg := benchConfig()
	cfg.MaxKeys = 2 * benchKeys
	e, err := New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range obs {
		o := obs[i]
		o.Time = base
		e.Observe(o)
	}
	// Not the previous run's garbage on this one's clock.
	runtime.GC()
	return e
}

// BenchmarkObserve: the target is well under 1µs for an observation no
// rule counts, a few µs for one that rules count.
func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name    string
		typ     string
		outcome string
		records int
	}{
		// No rule of this type: one map lookup.
		{"no rule for the type", "auth.logout", "", 0},
		// Six rules of the type, none matches.
		{"request matching no rule", TypeHTTPRequest, "forwarded", 0},
		// bulk-read counts it.
		{"read counted by one rule", TypeHTTPRequest, "forwarded", 10},
		// repeated-denials (per subject) and denials-per-ip count it.
		{"denial counted by two rules", TypeHTTPRequest, "denied", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			obs := benchObs(bc.outcome, bc.records)
			e := benchEngine(b, obs)
			for i := range obs {
				obs[i].Type = bc.typ
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o := &obs[i%benchKeys]
				o.Time = base.Add(time.Duration(i) * time.Microsecond)
				e.Observe(*o)
				i++
			}
		})
	}
}

// BenchmarkObserveNewKeys: every observation a key not tracked, in rules
// already full: insert and evict.
func BenchmarkObserveNewKeys(b *testing.B) {
	obs := benchObs("denied", 0)
	cfg := benchConfig()
	cfg.MaxKeys = 10_000
	e, err := New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o := &obs[i%benchKeys]
		o.Time = base.Add(time.Duration(i) * time.Microsecond)
		e.Observe(*o)
		i++
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	obs := benchObs("denied", 10)
	e := benchEngine(b, obs)
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			o := obs[i%benchKeys]
			o.Time = base.Add(time.Duration(i) * time.Microsecond)
			e.Observe(o)
		}
	})
}

// BenchmarkKeyMemory reports the heap one tracked key takes in a rule, with
// no sample request ids (a key far from its threshold) and with five, for
// docs/alerts.md.
func BenchmarkKeyMemory(b *testing.B) {
	for _, bc := range []struct {
		name      string
		threshold int64
	}{{"no samples", 1000}, {"five samples", 5}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := oneRule(Rule{Name: "m", Match: Match{Type: TypeHTTPRequest}, Key: KeySubject, Threshold: bc.threshold,
				Window: time.Minute, Cooldown: time.Nanosecond})
			obs := benchObs("denied", 0)
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				e, err := New(cfg, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				for round := range DefaultSamples {
					for i := range obs {
						o := obs[i]
						o.Time = base.Add(time.Duration(round) * time.Second)
						e.Observe(o)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/benchKeys, "B/key")
				runtime.KeepAlive(e)
			}
		})
	}
}
