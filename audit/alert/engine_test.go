package alert

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Every shipped rule fires on the observation that reaches its threshold,
// not on the one before, and no other shipped rule fires with it.
func TestDefaultRulesFireAtThreshold(t *testing.T) {
	for _, tc := range []struct {
		rule string
		obs  func(at time.Duration) Observation
	}{
		{"repeated-denials", func(at time.Duration) Observation { return denied("alice", "198.51.100.1", at) }},
		{"repeated-denials", func(at time.Duration) Observation { return denied("", "198.51.100.1", at) }},
		{"failed-login-burst", func(at time.Duration) Observation {
			return Observation{Time: base.Add(at), Type: "auth.login.failure", Reason: "state_replay", ClientIP: "203.0.113.7"}
		}},
		{"failed-credential-burst", func(at time.Duration) Observation {
			return Observation{Time: base.Add(at), Type: TypeHTTPRequest, Outcome: "unauthenticated", Reason: "invalid_credential",
				Status: 401, ClientIP: "203.0.113.7", RequestID: "r"}
		}},
		{"failed-credential-burst", func(at time.Duration) Observation {
			return Observation{Time: base.Add(at), Type: TypeHTTPRequest, Outcome: "rate_limited", Reason: "failed_credentials",
				Status: 429, ClientIP: "203.0.113.7"}
		}},
		{"hijack-suspected", func(at time.Duration) Observation {
			return Observation{Time: base.Add(at), Type: "session.hijack_suspected", SubjectID: "alice", ClientIP: "192.0.2.9"}
		}},
		{"step-up-failures", func(at time.Duration) Observation {
			return Observation{Time: base.Add(at), Type: "auth.step_up.failure", Reason: "step_up_too_weak", SubjectID: "alice"}
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			e := newEngine(t, Config{})
			r := ruleNamed(t, tc.rule)
			// Spread over half the window: all well inside it.
			step := r.Window / time.Duration(2*r.Threshold)
			for i := range r.Threshold - 1 {
				if got := e.Observe(tc.obs(time.Duration(i) * step)); got != nil {
					t.Fatalf("observation %d of %d fired %v", i+1, r.Threshold, fired(got))
				}
			}
			got := e.Observe(tc.obs(time.Duration(r.Threshold-1) * step))
			if d := cmp.Diff(fired(got), []string{tc.rule}); d != "" {
				t.Fatalf("observation %d fired (-got +want):\n%s", r.Threshold, d)
			}
			if got[0].Value != r.Threshold || got[0].Threshold != r.Threshold {
				t.Errorf("alert value %d threshold %d, want %d", got[0].Value, got[0].Threshold, r.Threshold)
			}
		})
	}
	t.Run("bulk-read", func(t *testing.T) {
		e := newEngine(t, Config{})
		read := func(at time.Duration, n int) []Alert {
			return e.Observe(Observation{Time: base.Add(at), Type: TypeHTTPRequest, Outcome: "forwarded", Status: 200,
				SubjectID: "alice", Records: n})
		}
		for i := range 4 {
			if got := read(time.Duration(i)*time.Minute, 1000); got != nil {
				t.Fatalf("read %d fired %v", i, fired(got))
			}
		}
		if got := read(4*time.Minute, 999); got != nil {
			t.Fatalf("4999 records fired %v", fired(got))
		}
		got := read(5*time.Minute, 1)
		if d := cmp.Diff(fired(got), []string{"bulk-read"}); d != "" {
			t.Fatalf("5000 records fired (-got +want):\n%s", d)
		}
		if got[0].Value != 5000 || got[0].Measure != SumRecords {
			t.Errorf("alert value %d %s, want 5000 records", got[0].Value, got[0].Measure)
		}
	})
}

func ruleNamed(t *testing.T, name string) Rule {
	for _, r := range DefaultRules() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no default rule %q", name)
	return Rule{}
}

// Window edges, with a 1m window (3s buckets) and a threshold of 2: the
// second observation fires exactly when the first still counts.
func TestWindowEdges(t *testing.T) {
	rule := Rule{Name: "w", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 2, Window: time.Minute, Cooldown: time.Hour}
	for _, tc := range []struct {
		name          string
		first, second time.Duration
		fire          bool
	}{
		{"same instant", 0, 0, true},
		{"one ns inside the window", 0, time.Minute - 1, true},
		{"exactly the window apart", 0, time.Minute, false},
		{"past the window", 0, time.Minute + time.Second, false},
		// The documented approximation: the window is kept to a bucket
		// (window/20 = 3s). An observation less than a window old but in
		// a bucket that has left the window no longer counts...
		{"late in a bucket that left", 3*time.Second - 1, time.Minute, false},
		{"late in a bucket that left, mid-bucket now", 3*time.Second - 1, time.Minute + time.Second, false},
		// ...while one window - window/20 old always counts.
		{"window less a bucket apart", 3 * time.Second, time.Minute, true},
		{"window less a bucket apart, mid-bucket", 4 * time.Second, time.Minute + time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, oneRule(rule))
			if got := e.Observe(Observation{Time: base.Add(tc.first), Type: "t", SubjectID: "s"}); got != nil {
				t.Fatalf("first observation fired %v", fired(got))
			}
			got := e.Observe(Observation{Time: base.Add(tc.second), Type: "t", SubjectID: "s"})
			if (got != nil) != tc.fire {
				t.Errorf("observations at +%s and +%s: fired %v, want %v", tc.first, tc.second, got != nil, tc.fire)
			}
		})
	}
}

// The window's guarantees hold wherever the observations fall: one older
// than the window never counts, one younger than window - window/20
// always does.
func TestWindowBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rule := Rule{Name: "w", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 2, Window: 10 * time.Second, Cooldown: time.Nanosecond}
	e := newEngine(t, oneRule(rule))
	start := base
	for i := range 2000 {
		sub := fmt.Sprint(i)
		age := time.Duration(rng.Int64N(int64(12 * time.Second)))
		first := start.Add(time.Duration(rng.Int64N(int64(time.Hour))))
		e.Observe(Observation{Time: first, Type: "t", SubjectID: sub})
		got := e.Observe(Observation{Time: first.Add(age), Type: "t", SubjectID: sub}) != nil
		switch {
		case age >= rule.Window && got:
			t.Fatalf("observations %s apart (first at %s) fired; the first is out of the window", age, first)
		case age < rule.Window-rule.Window/Buckets && !got:
			t.Fatalf("observations %s apart (first at %s) did not fire; the first is in the window", age, first)
		}
	}
}

func TestCooldown(t *testing.T) {
	rule := Rule{Name: "c", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 3, Window: time.Minute, Cooldown: 5 * time.Minute}
	e := newEngine(t, oneRule(rule))
	obs := func(at time.Duration) bool {
		return e.Observe(Observation{Time: base.Add(at), Type: "t", SubjectID: "s"}) != nil
	}
	var got []time.Duration
	// Three a minute for ten minutes: the threshold is reached every
	// minute, the rule fires every five.
	for m := range 10 {
		for s := range 3 {
			at := time.Duration(m)*time.Minute + time.Duration(s)*10*time.Second
			if obs(at) {
				got = append(got, at)
			}
		}
	}
	want := []time.Duration{20 * time.Second, 5*time.Minute + 20*time.Second}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("fired at (-got +want):\n%s", d)
	}
	// After the cooldown, the count must again reach the threshold within
	// the window: firing does not reset it, and the cooldown does not
	// make up for it.
	if obs(20 * time.Minute) {
		t.Error("one observation after the cooldown fired")
	}
	if obs(20*time.Minute+time.Second) || !obs(20*time.Minute+2*time.Second) {
		t.Error("the third observation in the window after the cooldown did not fire alone")
	}
	// Cooldown is per key.
	e.Observe(Observation{Time: base.Add(20*time.Minute + 3*time.Second), Type: "t", SubjectID: "other"})
	e.Observe(Observation{Time: base.Add(20*time.Minute + 3*time.Second), Type: "t", SubjectID: "other"})
	if e.Observe(Observation{Time: base.Add(20*time.Minute + 3*time.Second), Type: "t", SubjectID: "other"}) == nil {
		t.Error("another key did not fire while the first one cooled down")
	}
}

// The cooldown is exact: the first observation at fired+cooldown may fire.
func TestCooldownEdge(t *testing.T) {
	rule := Rule{Name: "c", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 1, Window: time.Minute, Cooldown: 5 * time.Minute}
	e := newEngine(t, oneRule(rule))
	for _, tc := range []struct {
		at   time.Duration
		fire bool
	}{{0, true}, {time.Minute, false}, {5*time.Minute - 1, false}, {5 * time.Minute, true}, {5*time.Minute + 1, false}} {
		if got := e.Observe(Observation{Time: base.Add(tc.at), Type: "t", SubjectID: "s"}) != nil; got != tc.fire {
			t.Errorf("observation at +%s fired %v, want %v", tc.at, got, tc.fire)
		}
	}
}

func TestKeys(t *testing.T) {
	rule := func(key string) Rule {
		return Rule{Name: "k", Match: Match{Type: "t"}, Key: key, Threshold: 2, Window: time.Minute}
	}
	obs := func(sub, ip string) Observation {
		return Observation{Time: base, Type: "t", SubjectID: sub, ClientIP: ip}
	}
	for _, tc := range []struct {
		name    string
		key     string
		a, b    Observation
		fire    bool
		kind    string
		alertOn string
	}{
		{"subject: same subject, two addresses", KeySubject, obs("alice", "192.0.2.1"), obs("alice", "192.0.2.2"), true, KeySubject, "alice"},
		{"subject: two subjects, one address", KeySubject, obs("alice", "192.0.2.1"), obs("bob", "192.0.2.1"), false, "", ""},
		{"subject: anonymous does not count", KeySubject, obs("", "192.0.2.1"), obs("", "192.0.2.1"), false, "", ""},
		{"ip: two subjects, one address", KeyIP, obs("alice", "192.0.2.1"), obs("bob", "192.0.2.1"), true, KeyIP, "192.0.2.1"},
		{"ip: same subject, two addresses", KeyIP, obs("alice", "192.0.2.1"), obs("alice", "192.0.2.2"), false, "", ""},
		{"ip: no address does not count", KeyIP, obs("alice", ""), obs("alice", ""), false, "", ""},
		{"ip: IPv4-mapped is IPv4", KeyIP, obs("", "::ffff:192.0.2.1"), obs("", "192.0.2.1"), true, KeyIP, "192.0.2.1"},
		{"ip: IPv6 per /64", KeyIP, obs("", "2001:db8:1:2::1"), obs("", "2001:db8:1:2:ffff::9"), true, KeyIP, "2001:db8:1:2::/64"},
		{"ip: IPv6 other /64", KeyIP, obs("", "2001:db8:1:2::1"), obs("", "2001:db8:1:3::1"), false, "", ""},
		{"ip: zone ignored", KeyIP, obs("", "fe80::1%eth0"), obs("", "fe80::2%eth1"), true, KeyIP, "fe80::/64"},
		{"subject_or_ip: anonymous per address", KeySubjectOrIP, obs("", "192.0.2.1"), obs("", "192.0.2.1"), true, KeyIP, "192.0.2.1"},
		{"subject_or_ip: subject wherever it is", KeySubjectOrIP, obs("alice", "192.0.2.1"), obs("alice", "192.0.2.2"), true, KeySubject, "alice"},
		// A subject whose id reads like an address is not that address.
		{"subject_or_ip: kinds apart", KeySubjectOrIP, obs("192.0.2.1", "198.51.100.1"), obs("", "192.0.2.1"), false, "", ""},
		{"subject_or_ip: subject and anonymous apart", KeySubjectOrIP, obs("alice", "192.0.2.1"), obs("", "192.0.2.1"), false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, oneRule(rule(tc.key)))
			if got := e.Observe(tc.a); got != nil {
				t.Fatalf("first fired %v", fired(got))
			}
			got := e.Observe(tc.b)
			if (got != nil) != tc.fire {
				t.Fatalf("fired %v, want %v", got != nil, tc.fire)
			}
			if tc.fire && (got[0].KeyKind != tc.kind || got[0].Key != tc.alertOn) {
				t.Errorf("alert on %s %q, want %s %q", got[0].KeyKind, got[0].Key, tc.kind, tc.alertOn)
			}
		})
	}
}

// Anonymous observations leave no state in a subject rule.
func TestKeySubjectAnonymousNoState(t *testing.T) {
	e := newEngine(t, oneRule(Rule{Name: "k", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 2, Window: time.Minute}))
	for i := range 100 {
		e.Observe(Observation{Time: base, Type: "t", ClientIP: fmt.Sprintf("192.0.2.%d", i)})
	}
	if s := stats(e, "k"); s.Subjects != 0 || s.IPs != 0 {
		t.Errorf("stats %+v, want no keys", s)
	}
}

func TestMatch(t *testing.T) {
	rule := Rule{Name: "m", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"denied", "rejected"},
		Reason: []string{"policy"}, Status: []int{403}}, Key: KeySubject, Threshold: 1, Window: time.Minute, Cooldown: time.Nanosecond}
	e := newEngine(t, oneRule(rule))
	ok := Observation{Time: base, Type: TypeHTTPRequest, Outcome: "denied", Reason: "policy", Status: 403, SubjectID: "a"}
	for _, tc := range []struct {
		name string
		edit func(*Observation)
		fire bool
	}{
		{"all match", func(*Observation) {}, true},
		{"other listed outcome", func(o *Observation) { o.Outcome = "rejected" }, true},
		{"type", func(o *Observation) { o.Type = "http.request.x" }, false},
		{"outcome", func(o *Observation) { o.Outcome = "forwarded" }, false},
		{"reason", func(o *Observation) { o.Reason = "step_up" }, false},
		{"status", func(o *Observation) { o.Status = 401 }, false},
	} {
		o := ok
		o.Time = o.Time.Add(time.Second * time.Duration(len(tc.name)))
		tc.edit(&o)
		if got := e.Observe(o) != nil; got != tc.fire {
			t.Errorf("%s: fired %v, want %v", tc.name, got, tc.fire)
		}
	}
}

func TestSumRecords(t *testing.T) {
	rule := Rule{Name: "s", Match: Match{Type: TypeHTTPRequest}, Key: KeySubject, Sum: SumRecords, Threshold: 100, Window: time.Minute}
	e := newEngine(t, oneRule(rule))
	read := func(at time.Duration, n int) []Alert {
		return e.Observe(Observation{Time: base.Add(at), Type: TypeHTTPRequest, Outcome: "forwarded", SubjectID: "a", Records: n,
			RequestID: fmt.Sprint("r", int64(at/time.Second))})
	}
	// Requests without records (unknown, or not a read) keep no state.
	read(0, 0)
	read(0, -5)
	if s := stats(e, "s"); s.Subjects != 0 {
		t.Fatalf("stats after reads without records %+v, want no keys", s)
	}
	if got := read(time.Second, 60); got != nil {
		t.Fatal("60 records fired")
	}
	// Records past the window do not count.
	if got := read(time.Minute+time.Second, 60); got != nil {
		t.Fatal("60 + 60 records a window apart fired")
	}
	got := read(time.Minute+2*time.Second, 1000)
	if len(got) != 1 {
		t.Fatalf("1060 records fired %v", fired(got))
	}
	want := Alert{Rule: "s", Severity: SeverityMedium, KeyKind: KeySubject, Key: "a", Measure: SumRecords, Value: 1060,
		Threshold: 100, Window: time.Minute, First: base.Add(time.Minute + time.Second), Last: base.Add(time.Minute + 2*time.Second),
		RequestIDs: []string{"r1", "r61", "r62"},
		Message:    `s: 1060 records returned for subject "a" within 1m (threshold 100)`}
	if d := cmp.Diff(got[0], want); d != "" {
		t.Errorf("alert (-got +want):\n%s", d)
	}
}

// A response of more records than a bucket holds counts as many as it
// holds, and the sum still fires.
func TestSumSaturates(t *testing.T) {
	rule := Rule{Name: "s", Match: Match{Type: TypeHTTPRequest}, Key: KeySubject, Sum: SumRecords, Threshold: MaxThreshold, Window: time.Minute}
	e := newEngine(t, oneRule(rule))
	o := Observation{Time: base, Type: TypeHTTPRequest, SubjectID: "a", Records: 1 << 40}
	if got := e.Observe(o); len(got) != 1 || got[0].Value != 1<<32-1 {
		t.Fatalf("huge read: %+v", got)
	}
	if got := e.Observe(o); got != nil {
		t.Fatalf("second huge read in the cooldown fired %+v", got)
	}
}

func TestAlertFields(t *testing.T) {
	rule := Rule{Name: "d", Match: Match{Type: TypeHTTPRequest, Outcome: []string{"denied"}}, Key: KeySubject,
		Threshold: 7, Window: time.Minute, Severity: SeverityHigh}
	cfg := oneRule(rule)
	cfg.Samples = 3
	e := newEngine(t, cfg)
	var got []Alert
	for i := range 7 {
		got = e.Observe(denied("alice", "192.0.2.1", 10*time.Second+time.Duration(i)*time.Second))
	}
	want := []Alert{{Rule: "d", Severity: SeverityHigh, KeyKind: KeySubject, Key: "alice", Measure: MeasureEvents, Value: 7,
		Threshold: 7, Window: time.Minute, First: base.Add(10 * time.Second), Last: base.Add(16 * time.Second),
		RequestIDs: []string{"req-alice-192.0.2.1-14000000000", "req-alice-192.0.2.1-15000000000", "req-alice-192.0.2.1-16000000000"},
		Message:    `d: 7 events for subject "alice" within 1m (threshold 7)`}}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("alert (-got +want):\n%s", d)
	}
}

// First is the earliest observation still in the window, to the bucket.
func TestAlertFirst(t *testing.T) {
	rule := Rule{Name: "f", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 2, Window: time.Minute, Cooldown: time.Nanosecond}
	e := newEngine(t, oneRule(rule))
	obs := func(at time.Duration) []Alert {
		return e.Observe(Observation{Time: base.Add(at), Type: "t", SubjectID: "s"})
	}
	obs(0)
	if got := obs(4 * time.Second); len(got) != 1 || got[0].First != base {
		t.Fatalf("alert at +4s: %+v, want one from +0s", got)
	}
	// At +61s the bucket of +0s has left the window; the oldest one in it
	// starts at +3s and holds +4s.
	if got := obs(61 * time.Second); len(got) != 1 || got[0].First != base.Add(3*time.Second) || got[0].Last != base.Add(61*time.Second) {
		t.Fatalf("alert at +61s: %+v, want one from +3s to +61s", got)
	}
}

// Events delivered a little out of order count where they belong; one
// older than the newest event's window is dropped.
func TestOutOfOrder(t *testing.T) {
	rule := Rule{Name: "o", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 3, Window: time.Minute}
	e := newEngine(t, oneRule(rule))
	obs := func(at time.Duration) []Alert {
		return e.Observe(Observation{Time: base.Add(at), Type: "t", SubjectID: "s"})
	}
	obs(2 * time.Minute)
	if obs(30*time.Second) != nil {
		t.Fatal("an observation older than the window fired")
	}
	obs(90 * time.Second)
	got := obs(100 * time.Second)
	if len(got) != 1 || got[0].Last != base.Add(2*time.Minute) || got[0].First != base.Add(90*time.Second) {
		t.Fatalf("late observations in the window: %+v", got)
	}
}

// Observations without a time are stamped by the Engine's clock.
func TestClock(t *testing.T) {
	c := &clock{t: base}
	e, err := New(oneRule(Rule{Name: "c", Match: Match{Type: "t"}, Threshold: 2, Window: time.Minute}), c.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Observe(Observation{Type: "t", SubjectID: "s"})
	c.set(base.Add(time.Minute))
	if got := e.Observe(Observation{Type: "t", SubjectID: "s"}); got != nil {
		t.Fatal("observations a window apart fired")
	}
	c.set(base.Add(time.Minute + time.Second))
	got := e.Observe(Observation{Type: "t", SubjectID: "s"})
	if len(got) != 1 || got[0].Last != base.Add(time.Minute+time.Second) {
		t.Fatalf("alert %+v, want one at +1m1s", got)
	}
}

// Rules of the same type all see an observation; alerts come in rule
// order.
func TestSeveralRules(t *testing.T) {
	cfg := Config{Rules: []Rule{
		{Name: "b", Match: Match{Type: "t"}, Key: KeyIP, Threshold: 1, Window: time.Minute},
		{Name: "a", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 1, Window: time.Minute},
		{Name: "other", Match: Match{Type: "u"}, Threshold: 1, Window: time.Minute},
	}}
	e := newEngine(t, cfg)
	got := e.Observe(Observation{Time: base, Type: "t", SubjectID: "s", ClientIP: "192.0.2.1"})
	if d := cmp.Diff(fired(got), []string{"b", "a"}); d != "" {
		t.Errorf("fired (-got +want):\n%s", d)
	}
}

// Many goroutines on one key: the threshold is crossed once, so exactly
// one alert fires, and every observation is counted.
func TestConcurrent(t *testing.T) {
	const workers, each = 8, 500
	cfg := Config{MaxKeys: 300, Rules: []Rule{
		{Name: "one", Match: Match{Type: "t"}, Key: KeySubject, Threshold: workers * each, Window: time.Hour, Cooldown: time.Hour},
		{Name: "spread", Match: Match{Type: "t"}, Key: KeyIP, Threshold: 3, Window: time.Hour, Cooldown: time.Hour},
	}}
	e := newEngine(t, cfg)
	var mu sync.Mutex
	var alerts []Alert
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				got := e.Observe(Observation{Time: base.Add(time.Duration(i) * time.Millisecond), Type: "t", SubjectID: "s",
					ClientIP: fmt.Sprintf("10.0.%d.%d", w, i%250), RequestID: "r"})
				if got != nil {
					mu.Lock()
					alerts = append(alerts, got...)
					mu.Unlock()
				}
				if i%100 == 0 {
					e.Stats()
				}
			}
		})
	}
	wg.Wait()
	var one int
	for _, a := range alerts {
		if a.Rule == "one" {
			one++
			if a.Value != workers*each {
				t.Errorf("alert value %d, want %d", a.Value, workers*each)
			}
		}
	}
	if one != 1 {
		t.Errorf("rule one fired %d times, want 1", one)
	}
	if s := stats(e, "spread"); s.IPs > 300 {
		t.Errorf("spread tracks %d addresses, more than max_keys 300", s.IPs)
	}
}

// A rule's keys are kept in order of last use: Stats sees them all.
func TestStats(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{{Name: "s", Match: Match{Type: "t"}, Threshold: 2, Window: time.Minute}}})
	for i := range 10 {
		e.Observe(Observation{Time: base, Type: "t", SubjectID: fmt.Sprint("u", i%4), ClientIP: fmt.Sprint("192.0.2.", i)})
		e.Observe(Observation{Time: base, Type: "t", ClientIP: fmt.Sprint("192.0.2.", i%3)})
	}
	want := []RuleStats{{Rule: "s", Subjects: 4, IPs: 3, Fired: 7}}
	if d := cmp.Diff(e.Stats(), want); d != "" {
		t.Errorf("Stats (-got +want):\n%s", d)
	}
	if !slices.Equal(fired(e.Observe(Observation{Time: base, Type: "none"})), nil) {
		t.Error("an unmatched type fired")
	}
}

// A key keeps request ids only once they may be among an alert's latest:
// an address seen once by a rule of threshold 20 keeps none.
func TestSamplesOnlyNearThreshold(t *testing.T) {
	rule := Rule{Name: "s", Match: Match{Type: "t"}, Key: KeySubject, Threshold: 20, Window: time.Minute}
	e := newEngine(t, oneRule(rule))
	var got []Alert
	for i := range 20 {
		got = e.Observe(Observation{Time: base, Type: "t", SubjectID: "s", RequestID: fmt.Sprint("r", i)})
		ent := e.rules[0].subjects.shard("s").entries["s"]
		if want := max(0, i-14); len(ent.samples) != want {
			t.Fatalf("after %d observations the key keeps %d request ids, want %d", i+1, len(ent.samples), want)
		}
	}
	if d := cmp.Diff(got[0].RequestIDs, []string{"r15", "r16", "r17", "r18", "r19"}); d != "" {
		t.Errorf("request ids (-got +want):\n%s", d)
	}
}
