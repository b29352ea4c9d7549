package alert

import (
	"fmt"
	"testing"
	"time"
)

func loginFailure(ip string, at time.Duration) Observation {
	return Observation{Time: base.Add(at), Type: "auth.login.failure", Reason: "state_replay", ClientIP: ip}
}

var burstRule = Rule{Name: "burst", Match: Match{Type: "auth.login.failure"}, Key: KeyIP, Threshold: 10, Window: 10 * time.Minute}

// Attack: an address flood (a client rotating addresses) must not grow
// memory past max_keys.
func TestEvictionBounded(t *testing.T) {
	cfg := oneRule(burstRule)
	cfg.MaxKeys = 1000
	e := newEngine(t, cfg)
	for i := range 100_000 {
		e.Observe(loginFailure(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), time.Duration(i)*time.Millisecond))
	}
	// All were live (within the window): every key past the first 1000
	// pushed one out.
	if s := stats(e, "burst"); s.IPs != 1000 || s.Evicted != 99_000 {
		t.Errorf("stats %+v, want 1000 addresses tracked and 99000 evicted", s)
	}
}

// Attack: spraying single failures from many addresses to push out the
// entry of an address that is guessing slowly, so that its count starts
// again. Sprayed keys count 1 and go before any key that counts more.
func TestEvictionSprayDoesNotReset(t *testing.T) {
	cfg := oneRule(burstRule)
	cfg.MaxKeys = 1000
	e := newEngine(t, cfg)
	const victim = "203.0.113.7"
	at := time.Duration(0)
	// Two quick tries: past the weight of a sprayed key.
	e.Observe(loginFailure(victim, at))
	e.Observe(loginFailure(victim, at))
	spray := 0
	for try := 3; try <= 10; try++ {
		// Five times max_keys sprayed addresses between two tries.
		for range 5000 {
			at += time.Millisecond
			e.Observe(loginFailure(fmt.Sprintf("10.%d.%d.%d", spray>>16, spray>>8&255, spray&255), at))
			spray++
		}
		got := e.Observe(loginFailure(victim, at))
		if (got != nil) != (try == 10) {
			t.Fatalf("try %d fired %v", try, got != nil)
		}
	}
	if s := stats(e, "burst"); s.Evicted == 0 {
		t.Errorf("stats %+v: the spray evicted nothing", s)
	}
}

// The documented cost of pushing a key out: the EvictSample least recently
// seen keys must count at least as much as it. Keys that count less do not
// push it out.
func TestEvictionCost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perKey   int
		survives bool
	}{
		{"keys counting less", 2, true},
		{"keys counting as much", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneRule(Rule{Name: "burst", Match: Match{Type: "auth.login.failure"}, Key: KeyIP, Threshold: 4, Window: 10 * time.Minute})
			cfg.MaxKeys = 16 // one shard
			e := newEngine(t, cfg)
			for range 3 {
				e.Observe(loginFailure("203.0.113.7", 0))
			}
			// Fill the table, then one more key.
			for i := range 16 {
				for range tc.perKey {
					e.Observe(loginFailure(fmt.Sprint("10.0.0.", i), time.Second))
				}
			}
			if got := e.Observe(loginFailure("203.0.113.7", 2*time.Second)) != nil; got != tc.survives {
				t.Errorf("the fourth try fired %v, want %v (stats %+v)", got, tc.survives, stats(e, "burst"))
			}
		})
	}
}

// Keys whose window has passed hold nothing: they make room without
// counting as evictions.
func TestIdleKeysDroppedFirst(t *testing.T) {
	cfg := oneRule(burstRule)
	cfg.MaxKeys = 16
	e := newEngine(t, cfg)
	for i := range 16 {
		e.Observe(loginFailure(fmt.Sprint("10.0.0.", i), 0))
	}
	for i := range 16 {
		e.Observe(loginFailure(fmt.Sprint("10.0.1.", i), burstRule.Window))
	}
	if s := stats(e, "burst"); s.IPs != 16 || s.Evicted != 0 {
		t.Errorf("stats %+v, want 16 addresses and none evicted", s)
	}
}

// A key in its cooldown is kept over one of the same count that is not:
// dropping it would let the rule fire again at once.
func TestEvictionKeepsCoolingKey(t *testing.T) {
	cfg := oneRule(Rule{Name: "h", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 2, Window: time.Minute, Cooldown: time.Hour})
	cfg.MaxKeys = 4
	e := newEngine(t, cfg)
	obs := func(sub string, at time.Duration) []Alert {
		return e.Observe(Observation{Time: base.Add(at), Type: "t", SubjectID: sub})
	}
	obs("cooling", 0)
	if obs("cooling", 0) == nil {
		t.Fatal("did not fire")
	}
	obs("plain", 0)
	// After the window both count 0; "cooling" is the least recently seen
	// and "plain" holds nothing.
	obs("a", 2*time.Minute)
	obs("b", 2*time.Minute)
	obs("new", 2*time.Minute)
	obs("cooling", 2*time.Minute)
	if got := obs("cooling", 2*time.Minute); got != nil {
		t.Errorf("the key in its cooldown was dropped and fired again: %+v", got)
	}
	// "plain" held nothing: dropping it is no eviction.
	if s := stats(e, "h"); s.Subjects != 4 || s.Evicted != 0 {
		t.Errorf("stats %+v, want 4 subjects, none evicted", s)
	}
}
