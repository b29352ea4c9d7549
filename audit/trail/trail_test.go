package trail

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/audit/alert"
	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/scope"
)

// recorder is a Pipeline that keeps what it is given.
type recorder struct {
	mu      sync.Mutex
	events  []audit.Event
	durable int
	refuse  bool
}

func (r *recorder) Accepting() bool { return !r.refuse }

func (r *recorder) Emit(e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return audit.ErrRefused
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) EmitAdmitted(e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) EmitDurable(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	r.durable++
	r.mu.Unlock()
	return r.Emit(e)
}

func (r *recorder) of(typ audit.Type) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

var t0 = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

// forwarded is a sales user's redacted, filtered contact list read.
func forwarded() *proxy.AuditRecord {
	s := &scope.Scope{
		ID: "req-1", Start: t0, ClientIP: netip.MustParseAddr("203.0.113.7"), Method: "GET", Path: "/api/contacts",
		Route:          &scope.Route{ID: "contacts.list", Upstream: "crm"},
		Subject:        &scope.Subject{Kind: scope.KindUser, ID: "alice", Email: "alice@example.com", Roles: []string{"sales"}},
		Session:        &scope.Session{ID: "hash-1", Fingerprint: scope.FingerprintCheck{Bound: true, Match: false, Changed: []string{"ip_prefix"}}},
		Policy:         &scope.PolicyOutcome{Revision: "rev1", Allow: true, Reason: "sales may GET contacts.list", AuditDurability: "async", AuditTags: []string{"pii"}},
		Redaction:      &scope.Redaction{Result: "redacted", Rules: []scope.RedactedRule{{Path: "$..ssn", Action: "remove", Values: 3}}, RowsKept: 3, RowsDropped: 9},
		UpstreamStatus: 200, Outcome: "forwarded",
	}
	r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0")
	return &proxy.AuditRecord{Scope: s, Request: r, Status: 200, Bytes: 1234, Duration: 5 * time.Millisecond}
}

func TestRequestEvent(t *testing.T) {
	e := RequestEvent(forwarded())
	if e.Type != audit.TypeHTTPRequest || e.RequestID != "req-1" || e.RouteID != "contacts.list" || e.Status != 200 ||
		e.Bytes != 1234 || e.ClientIP != "203.0.113.7" || e.Host != "crm.example.com" || e.UserAgent != "Mozilla/5.0" {
		t.Errorf("request fields: %+v", e)
	}
	if e.Subject.ID != "alice" || e.Subject.Kind != "user" || e.Subject.Name != "alice@example.com" || e.SessionIDHash != "hash-1" {
		t.Errorf("subject: %+v, session %q", e.Subject, e.SessionIDHash)
	}
	if e.Fingerprint != "changed:ip_prefix" || e.PolicyRevision != "rev1" || !e.Decision.Evaluated || !e.Decision.Allow ||
		e.Decision.Redactions != 3 || e.Decision.Filtered != 9 || len(e.Decision.Tags) != 1 {
		t.Errorf("verdicts: fingerprint %q, decision %+v", e.Fingerprint, e.Decision)
	}
	if e.Upstream != "crm" || e.UpstreamStatus != 200 {
		t.Errorf("upstream %q %d", e.Upstream, e.UpstreamStatus)
	}

	// A request refused before any stage: no subject, no decision.
	rec := &proxy.AuditRecord{Scope: &scope.Scope{ID: "req-2", Start: t0, Reason: "bad_request", Outcome: "rejected"},
		Request: httptest.NewRequest("GET", "https://crm.example.com/x/../y", nil), Status: 400}
	e = RequestEvent(rec)
	if e.Method != "GET" || e.Path == "" || e.Decision.Evaluated || e.Subject.ID != "" || e.Upstream != "" || e.Reason != "bad_request" {
		t.Errorf("rejected request: %+v", e)
	}
	// An API key is named by its id, never more.
	rec = forwarded()
	rec.Scope.Subject = &scope.Subject{Kind: scope.KindAPIKey, ID: "k1", APIKey: &scope.APIKey{ID: "k1", Name: "nightly", Owner: "ops"}}
	if e := RequestEvent(rec); e.Subject.APIKeyID != "k1" || e.Subject.Kind != "api_key" {
		t.Errorf("API key subject: %+v", e.Subject)
	}
}

func TestVerdict(t *testing.T) {
	for fp, want := range map[*scope.FingerprintCheck]string{
		{}:                                      "unbound",
		{Bound: true, Match: true}:              "match",
		{Bound: true, Changed: []string{"ja4"}}: "changed:ja4",
	} {
		if got := Verdict(*fp); got != want {
			t.Errorf("Verdict(%+v) = %q, want %q", *fp, got, want)
		}
	}
}

func TestTrailEvents(t *testing.T) {
	p := &recorder{}
	tr := New(p, nil, nil, nil)
	tr.Request(context.Background(), forwarded())
	if err := tr.RequestDurable(context.Background(), forwarded()); err != nil || p.durable != 1 {
		t.Fatalf("durable: %v, %d", err, p.durable)
	}
	tr.Emit(context.Background(), auth.Event{Type: auth.EventHijackSuspected, Time: t0, Subject: "alice", SessionHash: "h", ClientIP: "198.51.100.1",
		Severity: auth.SeverityHigh, Detail: "another client", Fingerprint: &auth.FingerprintChange{
			Bound: map[string]string{"ja4": "a"}, Current: map[string]string{"ja4": "b"}, Changed: []string{"ja4"}}})
	tr.Admin(context.Background(), admin.Event{Type: "apikey.created", Remote: "127.0.0.1:5555", Target: "k1"})
	tr.Admin(context.Background(), admin.Event{Type: "session.revoked", Remote: "[::1]:5555", Target: "user:bob", Count: 2})
	tr.PolicyReload(policy.ReloadEvent{Result: policy.ReloadSuccess, Revision: "r2", Previous: "r1", Active: "r2"})
	tr.PolicyReload(policy.ReloadEvent{Result: policy.ReloadUnchanged, Active: "r2"})
	tr.PolicyReload(policy.ReloadEvent{Result: "compile_error", Revision: "r3", Active: "r2", Err: errors.New("authz.rego:3: bad")})
	tr.ConfigLoaded("/etc/crmgate.yaml", "abc", "1.0")

	if n := len(p.of(audit.TypeHTTPRequest)); n != 2 {
		t.Errorf("request events: %d", n)
	}
	h := p.of(audit.TypeHijackSuspected)
	if len(h) != 1 || h[0].Severity != audit.SeverityHigh || h[0].Subject.ID != "alice" || h[0].Fingerprint != "changed:ja4" || len(h[0].Fields) != 2 {
		t.Errorf("hijack: %+v", h)
	}
	if k := p.of(audit.TypeAPIKeyCreated); len(k) != 1 || k[0].Target.APIKeyID != "k1" || k[0].ClientIP != "127.0.0.1" || k[0].Action != "create" {
		t.Errorf("apikey.created: %+v", k)
	}
	if s := p.of(audit.TypeSessionRevoked); len(s) != 1 || s[0].Target.ID != "bob" || s[0].ClientIP != "::1" {
		t.Errorf("session.revoked: %+v", s)
	}
	if r := p.of(audit.TypePolicyReloaded); len(r) != 1 || r[0].PolicyRevision != "r2" {
		t.Errorf("policy.reloaded (unchanged is no event): %+v", r)
	}
	if r := p.of(audit.TypePolicyRejected); len(r) != 1 || r[0].Outcome != audit.OutcomeFailure || r[0].PolicyRevision != "r2" {
		t.Errorf("policy.rejected: %+v", r)
	}
	if c := p.of(audit.TypeConfigLoaded); len(c) != 1 {
		t.Errorf("config.loaded: %+v", c)
	}
	if !tr.Accepting() {
		t.Error("not accepting")
	}
	p.refuse = true
	if tr.Accepting() {
		t.Error("accepting while the pipeline refuses")
	}
	tr.Request(context.Background(), forwarded()) // counted by the pipeline, not an error here
}

func TestTrailAlerts(t *testing.T) {
	cfg := alert.Config{}
	eng, err := alert.New(cfg, func() time.Time { return t0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, pages := &recorder{}, &recorder{}
	tr := New(p, eng, pages, nil)
	// The shipped rule: 20 denials of one subject within a minute.
	for i := range 20 {
		rec := forwarded()
		rec.Scope.ID = "req-" + string(rune('a'+i))
		rec.Scope.Outcome, rec.Scope.Reason, rec.Status = "denied", "policy", 403
		rec.Scope.Policy.Allow = false
		tr.Request(context.Background(), rec)
	}
	alerts := p.of(audit.TypeAlert)
	if len(alerts) != 1 || alerts[0].Reason != "repeated-denials" || alerts[0].Subject.ID != "alice" {
		t.Fatalf("alerts in the trail: %+v", alerts)
	}
	if len(pages.of(audit.TypeAlert)) != 1 {
		t.Error("the alert did not go to the alert sinks")
	}
	// A hijack alerts at once.
	tr.Emit(context.Background(), auth.Event{Type: auth.EventHijackSuspected, Time: t0, Subject: "bob", Severity: auth.SeverityHigh})
	if a := p.of(audit.TypeAlert); len(a) != 2 || a[1].Reason != "hijack-suspected" || a[1].Severity != audit.SeverityHigh {
		t.Errorf("hijack alert: %+v", a)
	}
	// Invalid credentials from one address.
	for i := range 20 {
		rec := &proxy.AuditRecord{Scope: &scope.Scope{ID: "bad-" + string(rune('a'+i)), Start: t0, ClientIP: netip.MustParseAddr("198.51.100.9"),
			Outcome: "unauthenticated", Reason: "invalid_credential"}, Status: 401}
		tr.Request(context.Background(), rec)
	}
	if a := p.of(audit.TypeAlert); len(a) != 3 || a[2].Reason != "failed-credential-burst" || a[2].ClientIP != "198.51.100.9" {
		t.Errorf("credential burst alert: %+v", a)
	}
}

// BenchmarkRequest is the trail's work on the request path for a
// forwarded request: mapping the record to an event and running the
// shipped alert rules, with a pipeline that only keeps the count.
func BenchmarkRequest(b *testing.B) {
	eng, err := alert.New(alert.Config{}, time.Now, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		alerts *alert.Engine
	}{{"mapping", nil}, {"mapping+alerts", eng}} {
		b.Run(bc.name, func(b *testing.B) {
			tr := New(countPipeline{}, bc.alerts, nil, nil)
			rec := forwarded()
			b.ReportAllocs()
			for b.Loop() {
				tr.Request(context.Background(), rec)
			}
		})
	}
}

type countPipeline struct{}

func (countPipeline) Accepting() bool                                { return true }
func (countPipeline) Emit(audit.Event) error                         { return nil }
func (countPipeline) EmitAdmitted(audit.Event) error                 { return nil }
func (countPipeline) EmitDurable(context.Context, audit.Event) error { return nil }

func TestRecent(t *testing.T) {
	tr := New(&recorder{}, nil, nil, nil)
	if got := tr.Recent(10); len(got) != 0 {
		t.Fatalf("empty trail: %d", len(got))
	}
	for i := range recentSize + 10 {
		rec := forwarded()
		rec.Scope.ID = fmt.Sprint("req-", i)
		tr.Request(context.Background(), rec)
	}
	got := tr.Recent(3)
	if len(got) != 3 || got[0].RequestID != fmt.Sprint("req-", recentSize+9) || got[2].RequestID != fmt.Sprint("req-", recentSize+7) || got[0].Fields != nil {
		t.Errorf("latest three: %+v", got)
	}
	if n := len(tr.Recent(10 * recentSize)); n != recentSize {
		t.Errorf("kept %d, want %d", n, recentSize)
	}
}
