package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. Label values come from
// configuration (route ids, upstream names) or small fixed sets, never from
// client input, so cardinality stays bounded.
type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	rejected   *prometheus.CounterVec
	upstream   *prometheus.CounterVec
	handshakes *prometheus.CounterVec
	conns      prometheus.Gauge
	inflight   prometheus.Gauge
	// The response transform's series.
	redactResponses *prometheus.CounterVec
	redactValues    prometheus.Counter
	redactRows      *prometheus.CounterVec
	// The PROXY protocol's series (server.proxy_protocol).
	proxyHeaders *prometheus.CounterVec
	proxyRefused *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_requests_total", Help: "Requests answered, by route, method, status code and outcome.",
		}, []string{"route", "method", "code", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "crmgate_request_duration_seconds", Help: "Time from intake to the end of the response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_rejected_requests_total", Help: "Requests refused before forwarding, by reason.",
		}, []string{"reason"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_upstream_errors_total", Help: "Failed forwards, by upstream and kind (timeout, error, client_closed).",
		}, []string{"upstream", "kind"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_tls_handshakes_total", Help: "TLS handshakes on the client listener, by result and negotiated protocol.",
		}, []string{"result", "protocol"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmgate_connections_open", Help: "Client connections open.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "crmgate_requests_in_flight", Help: "Requests being served.",
		}),
		redactResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_redact_responses_total",
			Help: "Responses whose decision asked for redaction or filtering, by result (redacted, no_body, passed, record_refused, refused, aborted).",
		}, []string{"result"}),
		redactValues: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmgate_redact_values_total", Help: "Values removed or replaced in responses by the decisions' redact rules.",
		}),
		redactRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_redact_rows_total", Help: "Rows of filtered arrays in responses, by what the filters did (kept, dropped).",
		}, []string{"row"}),
		proxyHeaders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_proxy_protocol_headers_total",
			Help: "PROXY protocol headers accepted from load balancers, by version (1, 2) and command (proxy: a client's address; local: the balancer's own connection).",
		}, []string{"version", "command"}),
		proxyRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_proxy_protocol_refused_total",
			Help: "Connections refused at their PROXY protocol header, by reason (untrusted_source, missing_header, malformed, timeout).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.rejected, m.upstream, m.handshakes, m.conns, m.inflight, m.redactResponses, m.redactValues, m.redactRows, m.proxyHeaders, m.proxyRefused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
