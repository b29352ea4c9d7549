package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAuditor keeps what the gateway records.
type fakeAuditor struct {
	mu       sync.Mutex
	records  []AuditRecord
	durable  []AuditRecord
	refuse   bool
	failSync error
	// delay is how long a durable write takes.
	delay time.Duration
}

func (a *fakeAuditor) Accepting() bool { return !a.refuse }

func (a *fakeAuditor) Request(_ context.Context, rec *AuditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, *rec)
}

func (a *fakeAuditor) RequestDurable(_ context.Context, rec *AuditRecord) error {
	time.Sleep(a.delay)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failSync != nil {
		return a.failSync
	}
	a.durable = append(a.durable, *rec)
	return nil
}

func (a *fakeAuditor) take() (records, durable []AuditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	records, durable = a.records, a.durable
	a.records, a.durable = nil, nil
	return records, durable
}

// auditPolicy allows everything, denies /api/office, and asks for a
// strict audit write on contacts.item.
const auditPolicy = `package crmgate.authz

default decision := {"allow": true, "audit": {"durability": "async", "tags": ["t"]}}

decision := {"allow": false, "reason": "office closed"} if input.route.id == "office"

decision := {"allow": true, "audit": {"durability": "strict", "tags": ["pii-read"]}} if input.route.id == "contacts.item"
`

func TestAuditEveryOutcome(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, auditPolicy)
	a := &fakeAuditor{}
	g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng, Auditor: a})
	for _, tc := range []struct {
		r       *http.Request
		status  int
		outcome string
	}{
		{req("GET", "/api/contacts"), 200, "forwarded"},
		{req("GET", "/nope"), 404, "no_route"},
		{req("GET", "/api/contacts/%2e%2e/admin"), 400, "rejected"},
		{req("GET", "/api/office"), 403, "denied"},
		{req("GET", "/slow"), 504, "upstream_timeout"},
		{req("TRACE", "/api/contacts"), 405, ""},
	} {
		w, _ := do(g, tc.r)
		records, durable := a.take()
		if w.Code != tc.status || len(records) != 1 || len(durable) != 0 {
			t.Errorf("%s %s: %d, %d records, %d durable; want %d and one record", tc.r.Method, tc.r.URL.Path, w.Code, len(records), len(durable), tc.status)
			continue
		}
		rec := records[0]
		if rec.Status != tc.status || rec.Scope == nil || rec.Scope.ID == "" || rec.Started || (tc.outcome != "" && rec.Scope.Outcome != tc.outcome) {
			t.Errorf("%s %s: record %+v (outcome %q)", tc.r.Method, tc.r.URL.Path, rec, rec.Scope.Outcome)
		}
	}
	// The decision's audit fields and the upstream's status reach the
	// record.
	do(g, req("GET", "/api/contacts"))
	records, _ := a.take()
	if p := records[0].Scope.Policy; p == nil || p.AuditDurability != "async" || strings.Join(p.AuditTags, ",") != "t" || records[0].Scope.UpstreamStatus != 200 || records[0].Bytes == 0 {
		t.Errorf("record of a forwarded request: %+v", records[0])
	}
}

func TestAuditStrict(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, auditPolicy)

	t.Run("the answer waits for the durable write", func(t *testing.T) {
		a := &fakeAuditor{delay: 30 * time.Millisecond}
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng, Auditor: a})
		start := time.Now()
		w, e := do(g, req("GET", "/api/contacts/7"))
		records, durable := a.take()
		if w.Code != 200 || e.Path != "/api/contacts/7" || len(durable) != 1 || len(records) != 0 || !durable[0].Started || durable[0].Status != 200 {
			t.Fatalf("strict: %d, %d records, durable %+v", w.Code, len(records), durable)
		}
		if time.Since(start) < 30*time.Millisecond {
			t.Error("answered before the durable write returned")
		}
		if tags := durable[0].Scope.Policy.AuditTags; len(tags) != 1 || tags[0] != "pii-read" {
			t.Errorf("tags = %v", tags)
		}
	})

	t.Run("no durable write, no answer", func(t *testing.T) {
		a := &fakeAuditor{failSync: errors.New("disk full")}
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng, Auditor: a})
		w, _ := do(g, req("GET", "/api/contacts/7"))
		records, _ := a.take()
		if w.Code != http.StatusServiceUnavailable || strings.Contains(w.Body.String(), "/api/contacts/7\"") || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("failed durable write: %d %s", w.Code, w.Body)
		}
		if len(records) != 0 {
			t.Errorf("a failed durable write was recorded again asynchronously: %+v", records)
		}
	})

	t.Run("without an audit trail a strict decision is denied", func(t *testing.T) {
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng})
		if w, e := do(g, req("GET", "/api/contacts/7")); w.Code != http.StatusForbidden || e.Path != "" {
			t.Errorf("strict without auditor: %d", w.Code)
		}
	})

	t.Run("no audit, no access", func(t *testing.T) {
		a := &fakeAuditor{refuse: true}
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}, Policy: eng, Auditor: a})
		w, e := do(g, req("GET", "/api/contacts"))
		records, _ := a.take()
		if w.Code != http.StatusServiceUnavailable || e.Path != "" || len(records) != 1 || records[0].Scope.Outcome != "audit_unavailable" {
			t.Errorf("refusing trail: %d, forwarded %q, records %d", w.Code, e.Path, len(records))
		}
	})
}
