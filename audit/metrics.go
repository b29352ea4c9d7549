package audit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// newMetrics makes the pipeline-wide metrics.
func (p *Pipeline) newMetrics() {
	p.emitted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crmgate_audit_events_emitted_total",
		Help: "Audit events taken by Emit and EmitDurable.",
	})
	p.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crmgate_audit_events_refused_total",
		Help: "Audit events refused (ErrRefused): the spool's budget was spent under on_full: refuse, or a strict event could not be made durable.",
	})
	p.fileFsyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crmgate_audit_fsyncs_total", Help: "fsyncs made for strict events, by target.",
		ConstLabels: prometheus.Labels{"target": "file"},
	})
	p.spoolFsyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crmgate_audit_fsyncs_total", Help: "fsyncs made for strict events, by target.",
		ConstLabels: prometheus.Labels{"target": "spool"},
	})
	p.strict = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "crmgate_audit_strict_write_seconds",
		Help:    "Time EmitDurable waited for its event to be fsynced.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
}

// laneMetrics are the per-sink counters of l.
var laneVecs = struct {
	delivered, spooled, replayed, lost, errors *prometheus.CounterOpts
}{
	&prometheus.CounterOpts{Name: "crmgate_audit_events_delivered_total", Help: "Audit events a sink took, by sink."},
	&prometheus.CounterOpts{Name: "crmgate_audit_events_spooled_total", Help: "Audit events written to a sink's disk spool (its queue was full or it failed), by sink."},
	&prometheus.CounterOpts{Name: "crmgate_audit_events_replayed_total", Help: "Audit events delivered from a sink's spool, by sink."},
	&prometheus.CounterOpts{Name: "crmgate_audit_events_lost_total", Help: "Audit events lost for a sink under on_full: drop (its spool was full), by sink."},
	&prometheus.CounterOpts{Name: "crmgate_audit_sink_errors_total", Help: "Failed deliveries to a sink (each retried), by sink."},
}

func (p *Pipeline) laneMetrics(l *lane) {
	mk := func(o *prometheus.CounterOpts) prometheus.Counter {
		c := *o
		c.ConstLabels = prometheus.Labels{"sink": l.name}
		return prometheus.NewCounter(prometheus.CounterOpts(c))
	}
	l.delivered = mk(laneVecs.delivered)
	l.spooled = mk(laneVecs.spooled)
	l.replayed = mk(laneVecs.replayed)
	l.lostC = mk(laneVecs.lost)
	l.errs = mk(laneVecs.errors)
}

// register registers every metric with r (nil: none).
func (p *Pipeline) register(r prometheus.Registerer) error {
	if r == nil {
		return nil
	}
	cs := []prometheus.Collector{p.emitted, p.refused, p.fileFsyncs, p.spoolFsyncs, p.strict,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmgate_audit_spool_bytes", Help: "Bytes held by the audit spool, all sinks together.",
		}, func() float64 { return float64(p.budget.used.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmgate_audit_spool_budget_bytes", Help: "The audit spool's disk budget (spool.max_bytes).",
		}, func() float64 { return float64(p.budget.max) }),
	}
	for _, l := range p.lanes {
		cs = append(cs, l.delivered, l.spooled, l.replayed, l.lostC, l.errs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "crmgate_audit_queue_depth", Help: "Audit events waiting in a sink's memory queue, by sink.",
				ConstLabels: prometheus.Labels{"sink": l.name},
			}, func() float64 {
				l.mu.Lock()
				defer l.mu.Unlock()
				return float64(l.n)
			}))
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("audit metrics: %w", err)
		}
	}
	return nil
}
