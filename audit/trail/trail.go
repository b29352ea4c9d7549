// Package trail is the gateway's audit trail: it turns what the gateway's
// stages report — a finished request (proxy.AuditRecord), the relying
// party's security events (auth.Event), the admin API's actions
// (admin.Event), policy reloads and the configuration in use — into audit
// events, hands them to the audit pipeline, and runs the alert rules over
// them. An alert is an event of its own: it goes to the trail like every
// other event, and to the alert pipeline when one is configured (a webhook
// or a syslog receiver that pages someone).
package trail

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/audit/alert"
	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/scope"
)

// Pipeline is where events go (*audit.Pipeline).
type Pipeline interface {
	Accepting() bool
	Emit(e audit.Event) error
	EmitAdmitted(e audit.Event) error
	EmitDurable(ctx context.Context, e audit.Event) error
}

// Trail records the gateway's events. Build it with New; it is safe for
// concurrent use.
type Trail struct {
	p      Pipeline
	alerts *alert.Engine
	// alertOut receives alert events as well; nil without alert sinks.
	alertOut Pipeline
	log      *slog.Logger
	recent   ring
}

// New returns a trail that emits to p, runs alerts (nil: no alert rules)
// over every event, and sends the alerts to alertOut too (nil: none).
func New(p Pipeline, alerts *alert.Engine, alertOut Pipeline, log *slog.Logger) *Trail {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Trail{p: p, alerts: alerts, alertOut: alertOut, log: log}
}

// Accepting reports whether events can be recorded (proxy.Auditor).
func (t *Trail) Accepting() bool { return t.p.Accepting() }

// Request records a finished request (proxy.Auditor).
func (t *Trail) Request(_ context.Context, rec *proxy.AuditRecord) {
	e := RequestEvent(rec)
	t.observe(&e, requestObservation(rec))
	if !rec.Scope.AuditAdmitted {
		t.emit(e)
		return
	}
	t.recent.add(e)
	if err := t.p.EmitAdmitted(e); err != nil {
		t.log.Error("audit: the event of an answered request was not recorded", "request_id", e.RequestID, "err", err)
	}
}

// RequestDurable records a request durably (proxy.Auditor).
func (t *Trail) RequestDurable(ctx context.Context, rec *proxy.AuditRecord) error {
	e := RequestEvent(rec)
	t.observe(&e, requestObservation(rec))
	t.recent.add(e)
	return t.p.EmitDurable(ctx, e)
}

// Emit records a security event of the relying party (auth.EventSink).
func (t *Trail) Emit(_ context.Context, ae auth.Event) {
	e := AuthEvent(ae)
	t.observe(&e, alert.Observation{Time: ae.Time, Type: ae.Type, Reason: ae.Reason, SubjectID: ae.Subject, ClientIP: ae.ClientIP})
	t.emit(e)
}

// Admin records an operator's action through the admin API.
func (t *Trail) Admin(_ context.Context, ae admin.Event) {
	e := audit.Event{Type: audit.Type(ae.Type), ClientIP: hostOf(ae.Remote), Action: actionOf(ae.Type),
		Subject: audit.Subject{Kind: "operator", ID: "admin-token"}, Severity: audit.SeverityMedium,
		Message: "admin API: " + ae.Type + " " + ae.Target}
	switch {
	case strings.HasPrefix(ae.Target, "user:"):
		e.Target = audit.Subject{Kind: scope.KindUser, ID: strings.TrimPrefix(ae.Target, "user:")}
	case strings.HasPrefix(ae.Target, "session:"):
		e.SessionIDHash = strings.TrimPrefix(ae.Target, "session:")
	case strings.HasPrefix(ae.Type, "apikey."):
		e.Target = audit.Subject{Kind: scope.KindAPIKey, APIKeyID: ae.Target}
	}
	if ae.Type == "apikey.deleted" {
		e.Type = audit.TypeAdminAction
	}
	e.Fields = append(e.Fields, audit.Field{Key: "target", Value: ae.Target})
	if ae.Count > 0 {
		e.Fields = append(e.Fields, audit.Field{Key: "count", Value: ae.Count})
	}
	t.emit(e)
}

// PolicyReload records an attempt to load the policy set (for
// policy.Options.OnReload). An unchanged set is not an event.
func (t *Trail) PolicyReload(r policy.ReloadEvent) {
	if r.Result == policy.ReloadUnchanged {
		return
	}
	e := audit.Event{Type: audit.TypePolicyReloaded, Reason: r.Result, Outcome: audit.OutcomeSuccess,
		Message: "policy set " + r.Active + " active",
		Fields: []audit.Field{{Key: "revision", Value: r.Revision}, {Key: "previous", Value: r.Previous},
			{Key: "active", Value: r.Active}, {Key: "elapsed_ms", Value: r.Elapsed.Milliseconds()}}}
	if r.BundleRevision != "" {
		e.Fields = append(e.Fields, audit.Field{Key: "bundle_revision", Value: r.BundleRevision})
	}
	if r.Err != nil {
		e.Type, e.Outcome, e.Severity = audit.TypePolicyRejected, audit.OutcomeFailure, audit.SeverityMedium
		e.Message = "policy set refused; " + r.Active + " stays active"
		e.Fields = append(e.Fields, audit.Field{Key: "error", Value: truncate(r.Err.Error(), 2048)})
	}
	e.PolicyRevision = r.Active
	t.emit(e)
}

// ConfigLoaded records the configuration the gateway started with: its
// file and the SHA-256 of its content (secrets are references, never
// values, in the file).
func (t *Trail) ConfigLoaded(path, sha256Hex, version string) {
	t.emit(audit.Event{Type: audit.TypeConfigLoaded, Outcome: audit.OutcomeSuccess, Message: "configuration loaded",
		Fields: []audit.Field{{Key: "path", Value: path}, {Key: "sha256", Value: sha256Hex}, {Key: "version", Value: version}}})
}

// emit hands e to the pipeline; a refusal is the pipeline's to count.
func (t *Trail) emit(e audit.Event) {
	t.recent.add(e)
	if err := t.p.Emit(e); err != nil && !errors.Is(err, audit.ErrRefused) {
		t.log.Warn("audit: event not recorded", "type", string(e.Type), "err", err)
	}
}

// observe runs the alert rules over an event and records what fires.
func (t *Trail) observe(e *audit.Event, o alert.Observation) {
	if t.alerts == nil {
		return
	}
	if o.Time.IsZero() {
		o.Time = e.Time
	}
	for _, a := range t.alerts.Observe(o) {
		ev := AlertEvent(a)
		t.emit(ev)
		if t.alertOut != nil {
			if err := t.alertOut.Emit(ev); err != nil {
				t.log.Warn("audit: alert not sent", "rule", a.Rule, "err", err)
			}
		}
	}
}

// RequestEvent is the http.request event of a finished request.
func RequestEvent(rec *proxy.AuditRecord) audit.Event {
	s, r := rec.Scope, rec.Request
	e := audit.Event{
		Type: audit.TypeHTTPRequest, Time: s.Start, RequestID: s.ID, Method: s.Method, Path: s.Path,
		ClientIP: addr(s), Status: rec.Status, Bytes: rec.Bytes, Duration: rec.Duration,
		UpstreamStatus: s.UpstreamStatus, Reason: s.Reason,
	}
	if s.Outcome != "" {
		e.Fields = append(e.Fields, audit.Field{Key: "outcome", Value: s.Outcome})
	}
	if r != nil {
		e.Host = truncate(r.Host, 256)
		e.UserAgent = truncate(r.UserAgent(), 256)
		if e.Method == "" {
			e.Method = truncate(r.Method, 32)
		}
		if e.Path == "" {
			e.Path = truncate(r.URL.EscapedPath(), 1024)
		}
	}
	if s.Route != nil {
		e.RouteID = s.Route.ID
		if s.UpstreamStatus != 0 {
			e.Upstream = s.Route.Upstream
		}
	}
	if sub := s.Subject; sub != nil {
		e.Subject = audit.Subject{Kind: sub.Kind, ID: sub.ID, Name: sub.Email, Roles: sub.Roles}
		if sub.APIKey != nil {
			e.Subject.APIKeyID = sub.APIKey.ID
		}
	}
	if ses := s.Session; ses != nil {
		e.SessionIDHash = ses.ID
		e.Fingerprint = Verdict(ses.Fingerprint)
	}
	if p := s.Policy; p != nil {
		e.PolicyRevision = p.Revision
		e.Decision = audit.Decision{Evaluated: true, Allow: p.Allow, Reason: p.Reason, Tags: p.AuditTags}
		if p.SessionAction != "" && p.SessionAction != policy.SessionNone {
			e.Fields = append(e.Fields, audit.Field{Key: "session_action", Value: p.SessionAction})
		}
	}
	if s.Outcome == "step_up" {
		e.Decision.StepUp = "requested"
	}
	if rd := s.Redaction; rd != nil {
		n := 0
		rules := make(map[string]int, len(rd.Rules))
		for _, rule := range rd.Rules {
			n += rule.Values
			if rule.Values > 0 {
				rules[rule.Path+" "+rule.Action] += rule.Values
			}
		}
		e.Decision.Redactions, e.Decision.Filtered = n, rd.RowsDropped
		e.Fields = append(e.Fields, audit.Field{Key: "redaction", Value: map[string]any{
			"result": rd.Result, "rules": rules, "rows_kept": rd.RowsKept, "rows_dropped": rd.RowsDropped}})
	}
	if rec.Started {
		e.Fields = append(e.Fields, audit.Field{Key: "recorded_at", Value: "response_start"})
	}
	return e
}

// Verdict is the fingerprint check as one word: "unbound", "match" or
// "changed:" and the components that changed.
func Verdict(fp scope.FingerprintCheck) string {
	switch {
	case !fp.Bound:
		return "unbound"
	case fp.Match:
		return "match"
	default:
		return "changed:" + strings.Join(fp.Changed, ",")
	}
}

func requestObservation(rec *proxy.AuditRecord) alert.Observation {
	s := rec.Scope
	o := alert.Observation{Time: s.Start, Type: string(audit.TypeHTTPRequest), Outcome: s.Outcome, Reason: s.Reason,
		Status: rec.Status, ClientIP: addr(s), RequestID: s.ID}
	if s.Subject != nil && s.Subject.Kind != scope.KindAnonymous {
		o.SubjectID = s.Subject.ID
	}
	if rd := s.Redaction; rd != nil {
		o.Records = rd.RowsKept
	}
	return o
}

// AuthEvent is the audit event of a relying-party security event.
func AuthEvent(ae auth.Event) audit.Event {
	e := audit.Event{Type: audit.Type(ae.Type), Time: ae.Time, ClientIP: ae.ClientIP, SessionIDHash: ae.SessionHash,
		Reason: ae.Reason, Message: ae.Detail}
	if ae.Subject != "" {
		e.Subject = audit.Subject{Kind: scope.KindUser, ID: ae.Subject}
	}
	switch ae.Severity {
	case auth.SeverityHigh:
		e.Severity = audit.SeverityHigh
	case auth.SeverityMedium:
		e.Severity = audit.SeverityMedium
	}
	if fp := ae.Fingerprint; fp != nil {
		e.Fingerprint = "changed:" + strings.Join(fp.Changed, ",")
		e.Fields = append(e.Fields,
			audit.Field{Key: "bound_fingerprint", Value: fp.Bound},
			audit.Field{Key: "fingerprint", Value: fp.Current})
	}
	return e
}

// AlertEvent is the audit event of an alert.
func AlertEvent(a alert.Alert) audit.Event {
	e := audit.Event{Type: audit.TypeAlert, Time: a.Last, Message: a.Message, Reason: a.Rule, Severity: severity(a.Severity)}
	switch a.KeyKind {
	case alert.KeySubject:
		e.Subject = audit.Subject{ID: a.Key}
	default:
		e.ClientIP = a.Key
	}
	e.Fields = []audit.Field{
		{Key: "rule", Value: a.Rule}, {Key: "key_kind", Value: a.KeyKind}, {Key: "key", Value: a.Key},
		{Key: "value", Value: a.Value}, {Key: "threshold", Value: a.Threshold},
		{Key: "window_s", Value: int64(a.Window / time.Second)}, {Key: "first", Value: a.First.UTC().Format(time.RFC3339Nano)},
		{Key: "sample_request_ids", Value: slices.Clone(a.RequestIDs)},
	}
	return e
}

func severity(s string) audit.Severity {
	switch s {
	case "critical":
		return audit.SeverityCritical
	case "high":
		return audit.SeverityHigh
	case "low":
		return audit.SeverityLow
	default:
		return audit.SeverityMedium
	}
}

func actionOf(typ string) string {
	_, verb, _ := strings.Cut(typ, ".")
	switch verb {
	case "created":
		return "create"
	case "deleted":
		return "delete"
	default:
		return "update"
	}
}

func addr(s *scope.Scope) string {
	if s.ClientIP.IsValid() {
		return s.ClientIP.String()
	}
	return ""
}

func hostOf(remote string) string {
	if i := strings.LastIndexByte(remote, ':'); i > 0 {
		return strings.Trim(remote[:i], "[]")
	}
	return remote
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
