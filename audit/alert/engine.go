package alert

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Engine runs the alert rules over observations. It is safe for concurrent
// use. Build a new one to change the rules: an Engine's rules and windows
// do not change.
type Engine struct {
	now func() time.Time
	// byType lists the rules of each event type, in configuration order.
	byType map[string][]*rule
	rules  []*rule
}

// rule is a Rule made ready to run.
type rule struct {
	Rule
	match compiledMatch
	// width is a bucket's length, window and cooldown the rule's, in ns.
	width, window, cooldown int64
	// samples is how many request ids a key keeps, once its total is past
	// sampleAbove: the ids of requests that cannot be among the latest
	// samples of an alert are not worth their memory (see New).
	samples     int
	sampleAbove int64
	// subjects and ips hold the keys; nil when the key kind needs none.
	subjects, ips *table

	firedN, evictedN atomic.Uint64
	firedC           prometheus.Counter
	evictedC         [2]prometheus.Counter // by kind: subject, ip
}

// New returns an Engine for cfg, after applying cfg's defaults (on a copy)
// and validating it. now is the clock of observations without a time (nil:
// time.Now). reg receives crmgate_audit_alerts_fired_total and
// crmgate_audit_alert_keys_evicted_total (nil: registers nothing); an
// Engine built again on the same registry, on reload, adds to the same
// counters.
func New(cfg Config, now func() time.Time, reg prometheus.Registerer) (*Engine, error) {
	if now == nil {
		now = time.Now
	}
	cfg.Rules = slices.Clone(cfg.Rules)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fired := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_audit_alerts_fired_total",
		Help: "Alerts fired, by rule.",
	}, []string{"rule"})
	evicted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_audit_alert_keys_evicted_total",
		Help: "Keys an alert rule stopped tracking while they still counted, to stay within max_keys, by rule and key kind (subject, ip).",
	}, []string{"rule", "kind"})
	if reg != nil {
		var err error
		if fired, err = register(reg, fired); err != nil {
			return nil, err
		}
		if evicted, err = register(reg, evicted); err != nil {
			return nil, err
		}
	}

	e := &Engine{now: now, byType: map[string][]*rule{}}
	for _, rc := range cfg.Rules {
		r := &rule{
			Rule:     rc,
			match:    compileMatch(rc.Match),
			width:    int64(rc.Window / Buckets),
			window:   int64(rc.Window),
			cooldown: int64(rc.Cooldown),
			samples:  cfg.Samples,
			firedC:   fired.WithLabelValues(rc.Name),
			evictedC: [2]prometheus.Counter{
				evicted.WithLabelValues(rc.Name, KeySubject),
				evicted.WithLabelValues(rc.Name, KeyIP),
			},
		}
		if rc.Sum == SumCount {
			// An alert never has more than Threshold observations to show.
			r.samples = int(min(int64(r.samples), rc.Threshold))
			// When a count reaches Threshold, the k-th latest observation
			// found it at Threshold-k+1 or more: counts only grow by
			// observations. So the latest samples all came past
			// Threshold-samples, and a key that never gets there (an
			// address sprayed once) keeps none.
			r.sampleAbove = rc.Threshold - int64(r.samples)
		} else {
			// A sum may grow by much at once: keep the requests that
			// brought it past half the threshold.
			r.sampleAbove = rc.Threshold/2 - 1
		}
		if rc.Key != KeyIP {
			r.subjects = newTable(cfg.MaxKeys)
		}
		if rc.Key != KeySubject {
			r.ips = newTable(cfg.MaxKeys)
		}
		e.rules = append(e.rules, r)
		e.byType[rc.Match.Type] = append(e.byType[rc.Match.Type], r)
	}
	return e, nil
}

// register registers c, or returns the collector already registered in its
// place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("alert metrics: %w", err)
	}
	return c, nil
}

// Observe counts o in every rule it matches and returns the alerts that
// fire now, in rule order; nil when none does.
func (e *Engine) Observe(o Observation) []Alert {
	rules := e.byType[o.Type]
	if len(rules) == 0 {
		return nil
	}
	t := o.Time
	if t.IsZero() {
		t = e.now()
	}
	ns := t.UnixNano()
	var out []Alert
	for _, r := range rules {
		if a, ok := r.observe(&o, ns); ok {
			out = append(out, a)
		}
	}
	return out
}

func (r *rule) observe(o *Observation, ns int64) (Alert, bool) {
	if !r.match.matches(o) {
		return Alert{}, false
	}
	v := int64(1)
	if r.Sum == SumRecords {
		if o.Records <= 0 {
			return Alert{}, false
		}
		v = min(int64(o.Records), math.MaxUint32)
	}
	var (
		tab       *table
		kind, key string
		ok        bool
	)
	if r.subjects != nil {
		key, ok = subjectKey(o)
		tab, kind = r.subjects, KeySubject
	}
	if !ok && r.ips != nil {
		key, ok = ipKey(o)
		tab, kind = r.ips, KeyIP
	}
	if !ok {
		return Alert{}, false
	}
	a, fire, evicted := tab.observe(r, kind, key, ns, v, o.RequestID)
	if evicted > 0 {
		r.evictedN.Add(uint64(evicted))
		r.evictedC[kindIndex(kind)].Add(float64(evicted))
	}
	if fire {
		r.firedN.Add(1)
		r.firedC.Inc()
	}
	return a, fire
}

func kindIndex(kind string) int {
	if kind == KeyIP {
		return 1
	}
	return 0
}

// RuleStats is what a rule holds and has done since the Engine was built.
type RuleStats struct {
	Rule string
	// Subjects and IPs are how many keys of each kind the rule tracks.
	Subjects, IPs int
	// Fired is how many alerts the rule fired.
	Fired uint64
	// Evicted is how many keys it dropped while they still counted, to
	// stay within max_keys.
	Evicted uint64
}

// Stats returns every rule's stats, in configuration order.
func (e *Engine) Stats() []RuleStats {
	out := make([]RuleStats, 0, len(e.rules))
	for _, r := range e.rules {
		st := RuleStats{Rule: r.Name, Fired: r.firedN.Load(), Evicted: r.evictedN.Load()}
		if r.subjects != nil {
			st.Subjects = r.subjects.len()
		}
		if r.ips != nil {
			st.IPs = r.ips.len()
		}
		out = append(out, st)
	}
	return out
}
