package admin

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// EventFeed is what the dashboard's events panel reads: the latest audit
// events, held in memory by the audit trail.
type EventFeed interface {
	// Recent returns up to limit events, newest first. It must not block
	// for long: the dashboard calls it on every poll.
	Recent(limit int) []FeedEvent
}

// FeedEvent is an audit event as the dashboard shows it. Every field is
// text for the page to show as text, never markup.
type FeedEvent struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`               // "http.request", "auth.login.failure", …
	Severity string    `json:"severity,omitempty"` // "info", "low", "medium", "high", "critical"
	Subject  string    `json:"subject,omitempty"`  // the user or API client
	ClientIP string    `json:"client_ip,omitempty"`
	Route    string    `json:"route,omitempty"`
	Method   string    `json:"method,omitempty"`
	Path     string    `json:"path,omitempty"`
	Message  string    `json:"message,omitempty"`
	// Status is the HTTP status answered; 0 for events that are not
	// about one response.
	Status int `json:"status,omitempty"`
}

// PolicyStatus is the policy stage's state as the dashboard shows it.
type PolicyStatus struct {
	// Revision names the policy bundle in force.
	Revision string
	// LastResult is the outcome of the last (re)load: "ok", "error", …
	LastResult string
	// LastError is the last reload's error; empty when it succeeded.
	LastError string
	// LastReload is when the last (re)load was attempted.
	LastReload time.Time
}

// SetEventFeed connects the dashboard's events panel to the audit trail.
// Without one (nil) the panel says the audit trail is off.
func (s *Server) SetEventFeed(f EventFeed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feed = f
}

// SetPolicyStatus gives the dashboard the policy stage's state; f is
// called on every poll and must be cheap. Without one (nil) the page
// shows "no policy".
func (s *Server) SetPolicyStatus(f func() PolicyStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = f
}

// Summary is the body of GET /dashboard/api/summary: the gateway's
// counters since start, which the page turns into rates by polling.
type Summary struct {
	Time time.Time `json:"time"`
	// Series are the counters the charts plot.
	Series SummarySeries `json:"series"`
	// RequestsByOutcome and RequestsByCode break down
	// crmgate_requests_total.
	RequestsByOutcome map[string]float64 `json:"requests_by_outcome"`
	RequestsByCode    map[string]float64 `json:"requests_by_code"`
	// RejectedByReason is crmgate_rejected_requests_total by reason.
	RejectedByReason map[string]float64 `json:"rejected_by_reason"`
	// SessionActions is crmgate_session_actions_total by action.
	SessionActions map[string]float64 `json:"session_actions"`
	// FingerprintChecks is crmgate_session_fingerprint_checks_total by
	// result.
	FingerprintChecks map[string]float64 `json:"fingerprint_checks"`
	// Audit holds every crmgate_audit_* counter and gauge, summed over
	// its labels, by name; empty without the audit trail.
	Audit map[string]float64 `json:"audit"`
	// Policy is nil when no policy status is set.
	Policy *PolicyJSON `json:"policy"`
}

// SummarySeries are cumulative counts since the gateway started.
type SummarySeries struct {
	// Requests is every request answered (crmgate_requests_total).
	Requests float64 `json:"requests"`
	// Denials are requests answered with outcome "denied".
	Denials float64 `json:"denials"`
	// StepUps are requests answered with outcome "step_up".
	StepUps float64 `json:"step_ups"`
	// RateLimited are requests answered with outcome "rate_limited".
	RateLimited float64 `json:"rate_limited"`
	// Hijacks are sessions the policy ended (session_action revoke,
	// crmgate_session_actions_total{action="revoke"}): with the shipped
	// policy, a session used from another client than the one it is
	// bound to.
	Hijacks float64 `json:"hijacks"`
}

// PolicyJSON is PolicyStatus on the wire.
type PolicyJSON struct {
	Revision   string    `json:"revision"`
	LastResult string    `json:"last_result"`
	LastError  string    `json:"last_error,omitempty"`
	LastReload time.Time `json:"last_reload,omitzero"`
}

func (s *Server) dashboardSummary(w http.ResponseWriter, r *http.Request) {
	mfs, err := s.gather.Gather()
	if err != nil {
		// Gather returns what it could collect with the error.
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: gathering metrics for the dashboard", slog.Any("err", err))
		if len(mfs) == 0 {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "gathering metrics failed; see the log"})
			return
		}
	}
	sum := summarize(mfs)
	sum.Time = time.Now().UTC()
	s.mu.Lock()
	policy := s.policy
	s.mu.Unlock()
	if policy != nil {
		p := policy()
		sum.Policy = &PolicyJSON{Revision: p.Revision, LastResult: p.LastResult, LastError: p.LastError, LastReload: p.LastReload.UTC()}
	}
	writeJSON(w, http.StatusOK, sum)
}

// summarize reads the dashboard's counters from gathered metric families.
func summarize(mfs []*dto.MetricFamily) Summary {
	sum := Summary{
		RequestsByOutcome: map[string]float64{}, RequestsByCode: map[string]float64{},
		RejectedByReason: map[string]float64{}, SessionActions: map[string]float64{},
		FingerprintChecks: map[string]float64{}, Audit: map[string]float64{},
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			v := value(mf.GetType(), m)
			switch {
			case name == "crmgate_requests_total":
				outcome := label(m, "outcome")
				sum.RequestsByOutcome[outcome] += v
				sum.RequestsByCode[label(m, "code")] += v
				sum.Series.Requests += v
				switch outcome {
				case "denied":
					sum.Series.Denials += v
				case "step_up":
					sum.Series.StepUps += v
				case "rate_limited":
					sum.Series.RateLimited += v
				}
			case name == "crmgate_rejected_requests_total":
				sum.RejectedByReason[label(m, "reason")] += v
			case name == "crmgate_session_actions_total":
				action := label(m, "action")
				sum.SessionActions[action] += v
				if action == "revoke" {
					sum.Series.Hijacks += v
				}
			case name == "crmgate_session_fingerprint_checks_total":
				sum.FingerprintChecks[label(m, "result")] += v
			case strings.HasPrefix(name, "crmgate_audit_") &&
				(mf.GetType() == dto.MetricType_COUNTER || mf.GetType() == dto.MetricType_GAUGE):
				sum.Audit[name] += v
			}
		}
	}
	return sum
}

// value is the number a counter or gauge holds; 0 for other types.
func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Limits of GET /dashboard/api/events.
const (
	defaultEventLimit = 50
	maxEventLimit     = 500
	// eventScan is how many of the latest events a filtered query looks
	// through: filters narrow the most recent events, they do not search
	// the whole trail.
	eventScan = 2000
	// maxFilterLen bounds a filter value.
	maxFilterLen = 256
)

// EventsResponse is the body of GET /dashboard/api/events.
type EventsResponse struct {
	// Enabled is false when no event feed is connected (no audit trail).
	Enabled bool        `json:"enabled"`
	Events  []FeedEvent `json:"events"`
	Count   int         `json:"count"`
	// Scanned is how many recent events the filters looked through.
	Scanned int `json:"scanned"`
}

// eventFilter is the query of GET /dashboard/api/events.
type eventFilter struct {
	limit int
	// typ matches an event type exactly or as a dotted prefix: "auth"
	// matches "auth.login.failure".
	typ     string
	subject string
	// class is the status class, 2 to 5 for 2xx to 5xx; 0: any.
	class int
}

func parseEventFilter(r *http.Request) (eventFilter, string) {
	q := r.URL.Query()
	f := eventFilter{limit: defaultEventLimit, typ: strings.TrimSpace(q.Get("type")), subject: strings.TrimSpace(q.Get("subject"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEventLimit {
			return f, "limit must be a number from 1 to " + strconv.Itoa(maxEventLimit)
		}
		f.limit = n
	}
	if len(f.typ) > maxFilterLen || len(f.subject) > maxFilterLen {
		return f, "a filter is longer than " + strconv.Itoa(maxFilterLen) + " bytes"
	}
	switch v := q.Get("status"); v {
	case "":
	case "2xx", "3xx", "4xx", "5xx":
		f.class = int(v[0] - '0')
	default:
		return f, `status must be 2xx, 3xx, 4xx or 5xx`
	}
	return f, ""
}

func (f eventFilter) match(e FeedEvent) bool {
	if f.typ != "" && e.Type != f.typ && !strings.HasPrefix(e.Type, strings.TrimSuffix(f.typ, ".")+".") {
		return false
	}
	if f.subject != "" && e.Subject != f.subject {
		return false
	}
	if f.class != 0 && e.Status/100 != f.class {
		return false
	}
	return true
}

func (s *Server) dashboardEvents(w http.ResponseWriter, r *http.Request) {
	f, problem := parseEventFilter(r)
	if problem != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": problem})
		return
	}
	s.mu.Lock()
	feed := s.feed
	s.mu.Unlock()
	if feed == nil {
		writeJSON(w, http.StatusOK, EventsResponse{Events: []FeedEvent{}})
		return
	}
	scan := f.limit
	if f.typ != "" || f.subject != "" || f.class != 0 {
		scan = eventScan
	}
	recent := feed.Recent(scan)
	if len(recent) > scan {
		recent = recent[:scan] // a feed that ignores its limit
	}
	out := EventsResponse{Enabled: true, Events: []FeedEvent{}, Scanned: len(recent)}
	for _, e := range recent {
		if len(out.Events) == f.limit {
			break
		}
		if f.match(e) {
			e.Time = e.Time.UTC()
			out.Events = append(out.Events, e)
		}
	}
	out.Count = len(out.Events)
	writeJSON(w, http.StatusOK, out)
}
