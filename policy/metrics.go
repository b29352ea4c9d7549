package policy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Decision modes, the mode label of the decision metrics.
const (
	// ModeEmbedded: the gateway evaluated the set itself (Engine).
	ModeEmbedded = "embedded"
	// ModeServer: an OPA server was asked (Remote).
	ModeServer = "server"
)

// Results of a decision besides the failure reasons, the result label of
// crmgate_policy_decisions_total.
const (
	ResultAllow = "allow"
	ResultDeny  = "deny"
)

// decisionResults are every value of the result label: the policy's own
// answers and the engine's denies.
var decisionResults = []string{
	ResultAllow, ResultDeny,
	ReasonNotLoaded, ReasonUnknownEntrypoint, ReasonInputInvalid, ReasonUndefined,
	ReasonError, ReasonTimeout, ReasonCanceled, ReasonDecisionInvalid, ReasonUnavailable,
}

// decisionMetrics counts decisions by result and times them. The series
// of both modes have the same names, told apart by the mode label, so
// that one dashboard reads either deployment.
type decisionMetrics struct {
	results  map[string]prometheus.Counter
	duration prometheus.Observer
	counters *prometheus.CounterVec
	hist     *prometheus.HistogramVec
}

func newDecisionMetrics(mode string) *decisionMetrics {
	m := &decisionMetrics{
		results: make(map[string]prometheus.Counter, len(decisionResults)),
		counters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_decisions_total",
			Help: "Policy decisions, by mode (embedded, server) and result: allow, deny, or the reason the engine denied on the policy's behalf (policy_undefined, policy_error, policy_timeout, policy_unavailable, decision_invalid, ...).",
		}, []string{"mode", "result"}),
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crmgate_policy_decision_duration_seconds",
			Help:    "Time to one policy decision, by mode (embedded: the evaluation; server: the round trip to the OPA server, its evaluation included).",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"mode"}),
	}
	// Resolved once: a decision costs a map lookup, not a label hash.
	for _, r := range decisionResults {
		m.results[r] = m.counters.WithLabelValues(mode, r)
	}
	m.duration = m.hist.WithLabelValues(mode)
	return m
}

// register adds the series to reg; nil registers nothing.
func (m *decisionMetrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.counters, m.hist} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("policy metrics: %w", err)
		}
	}
	return nil
}

// observe counts d and its time.
func (m *decisionMetrics) observe(d *Decision) {
	r := ResultDeny
	switch {
	case d.Failed():
		r = d.Reason
	case d.Allow:
		r = ResultAllow
	}
	if c := m.results[r]; c != nil {
		c.Inc()
	}
	m.duration.Observe(d.Elapsed.Seconds())
}
