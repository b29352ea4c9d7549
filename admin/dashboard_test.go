package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/secret"
)

// fakeFeed is an EventFeed over a fixed list, newest first, that
// remembers the limits it was asked for.
type fakeFeed struct {
	events []FeedEvent
	mu     sync.Mutex
	asked  []int
	// ignoreLimit returns every event whatever the limit.
	ignoreLimit bool
}

func (f *fakeFeed) Recent(limit int) []FeedEvent {
	f.mu.Lock()
	f.asked = append(f.asked, limit)
	f.mu.Unlock()
	if f.ignoreLimit || limit > len(f.events) {
		return f.events
	}
	return f.events[:limit]
}

func (f *fakeFeed) lastLimit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[len(f.asked)-1]
}

func TestDashboardAuth(t *testing.T) {
	withToken := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	withToken.SetEventFeed(&fakeFeed{})
	noToken := newTestServer(Config{})
	noToken.SetEventFeed(&fakeFeed{})
	tests := []struct {
		name   string
		s      *Server
		method string
		path   string
		hdr    []string
		want   int
	}{
		{"page loads without the token", withToken, "GET", "/dashboard", nil, 200},
		{"page exact path", withToken, "GET", "/dashboard/", nil, 404},
		{"page is GET only", withToken, "POST", "/dashboard", nil, 405},
		{"summary without token", withToken, "GET", "/dashboard/api/summary", nil, 401},
		{"summary wrong token", withToken, "GET", "/dashboard/api/summary", []string{"Authorization", "Bearer nope"}, 401},
		{"summary token as basic", withToken, "GET", "/dashboard/api/summary", []string{"Authorization", "Basic " + token}, 401},
		{"summary two tokens", withToken, "GET", "/dashboard/api/summary", []string{"Authorization", "Bearer " + token, "Authorization", "Bearer x"}, 401},
		{"summary token in the query is not a token", withToken, "GET", "/dashboard/api/summary?token=" + token, nil, 401},
		{"summary with token", withToken, "GET", "/dashboard/api/summary", bearer, 200},
		{"events without token", withToken, "GET", "/dashboard/api/events", nil, 401},
		{"events wrong token", withToken, "GET", "/dashboard/api/events", []string{"Authorization", "Bearer " + token + "x"}, 401},
		{"events with token", withToken, "GET", "/dashboard/api/events", bearer, 200},
		{"sessions without token", withToken, "GET", "/sessions", nil, 401},
		{"revoke without token", withToken, "DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAA", nil, 401},
		// Loopback deployments without admin.token: the page and the
		// counters work; what names people needs a token.
		{"no token configured: page", noToken, "GET", "/dashboard", nil, 200},
		{"no token configured: summary", noToken, "GET", "/dashboard/api/summary", nil, 200},
		{"no token configured: events", noToken, "GET", "/dashboard/api/events", nil, 403},
		{"no token configured: sessions", noToken, "GET", "/sessions", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(tt.s.Handler(), tt.method, tt.path, tt.hdr...)
			if w.Code != tt.want {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

var (
	nonceAttr = regexp.MustCompile(`<(script|style)\b[^>]*\bnonce="([^"]*)"`)
	cspNonce  = regexp.MustCompile(`'nonce-([A-Za-z0-9+/=]+)'`)
)

func TestDashboardPageHeaders(t *testing.T) {
	h := newTestServer(Config{Token: secret.FromValue([]byte(token))}).Handler()
	seen := map[string]bool{}
	for range 3 {
		w := get(h, "GET", "/dashboard")
		hdr := w.Header()
		for name, want := range map[string]string{
			"Content-Type":           "text/html; charset=utf-8",
			"X-Content-Type-Options": "nosniff",
			"Cache-Control":          "no-store",
			"X-Frame-Options":        "DENY",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := hdr.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if c := hdr.Values("Set-Cookie"); len(c) > 0 {
			t.Errorf("the dashboard sets cookies: %v", c)
		}
		csp := hdr.Get("Content-Security-Policy")
		m := cspNonce.FindAllStringSubmatch(csp, -1)
		if len(m) != 2 || m[0][1] != m[1][1] || len(m[0][1]) < 22 {
			t.Fatalf("CSP %q: want one nonce of at least 128 bits for script-src and style-src", csp)
		}
		nonce := m[0][1]
		want := "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce + "'; " +
			"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
		if csp != want {
			t.Errorf("CSP = %q\nwant  %q", csp, want)
		}
		if seen[nonce] {
			t.Errorf("nonce %s served twice", nonce)
		}
		seen[nonce] = true

		body := w.Body.String()
		tags := nonceAttr.FindAllStringSubmatch(body, -1)
		if len(tags) != 3 { // the style sheet, the config block, the script
			t.Errorf("%d nonce'd elements, want 3: %v", len(tags), tags)
		}
		for _, tag := range tags {
			if tag[2] != nonce {
				t.Errorf("<%s nonce=%q>, the CSP's is %q", tag[1], tag[2], nonce)
			}
		}
		// Every element that runs or styles carries the nonce; nothing
		// is loaded from anywhere.
		if n := strings.Count(body, "<script"); n != 2 {
			t.Errorf("%d script elements, want 2", n)
		}
		for _, bad := range []string{" src=", " href=", "<link", "<iframe", " style=", "javascript:"} {
			if i := strings.Index(body, bad); i >= 0 {
				t.Errorf("the page has %q: %s", bad, body[max(0, i-60):min(len(body), i+60)])
			}
		}
		if m := regexp.MustCompile(`<[^>]+\son[a-z]+=`).FindString(body); m != "" {
			t.Errorf("the page has an inline event handler: %s", m)
		}
	}
}

func TestDashboardLanguage(t *testing.T) {
	h := newTestServer(Config{}).Handler()
	for _, tt := range []struct {
		accept, lang, title string
		absent              string
	}{
		{"", "en", "crmgate security dashboard", "仪表板"},
		{"en-GB,en;q=0.9", "en", "crmgate security dashboard", "仪表板"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans", "crmgate 安全仪表板", "Active sessions"},
		{"zh-TW", "en", "crmgate security dashboard", "仪表板"},
	} {
		t.Run(tt.accept, func(t *testing.T) {
			w := get(h, "GET", "/dashboard", "Accept-Language", tt.accept)
			body := w.Body.String()
			if !strings.Contains(body, `<html lang="`+tt.lang+`">`) || !strings.Contains(body, "<title>"+tt.title+"</title>") {
				t.Errorf("Accept-Language %q: want lang %s and title %q:\n%.400s", tt.accept, tt.lang, tt.title, body)
			}
			if strings.Contains(body, tt.absent) {
				t.Errorf("Accept-Language %q: the page has %q", tt.accept, tt.absent)
			}
			if got := w.Header().Get("Vary"); got != "Accept-Language" {
				t.Errorf("Vary = %q", got)
			}
			cfg := pageConfig(t, body)
			if cfg.Lang != tt.lang || len(cfg.Messages) < 50 {
				t.Errorf("script config: lang %q, %d messages", cfg.Lang, len(cfg.Messages))
			}
		})
	}
}

// pageConfig returns the data block the page hands its script.
func pageConfig(t *testing.T, body string) dashboardConfig {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script type="application/json" id="dashboard-config"[^>]*>(.*?)</script>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no dashboard-config block")
	}
	var cfg dashboardConfig
	if err := json.Unmarshal([]byte(m[1]), &cfg); err != nil {
		t.Fatalf("dashboard-config: %v\n%s", err, m[1])
	}
	return cfg
}

// Every text the script shows is in its config, in every language.
func TestDashboardScriptTexts(t *testing.T) {
	ids := regexp.MustCompile(`"(dashboard\.[a-z_.]+[a-z_])"`).FindAllStringSubmatch(dashboardJS, -1)
	if len(ids) < 30 {
		t.Fatalf("found only %d message ids in the script", len(ids))
	}
	for _, lang := range []string{"en", "zh-Hans"} {
		msgs := dashboardMessages(lang)
		for _, id := range ids {
			if _, ok := msgs[id[1]]; !ok {
				t.Errorf("%s: the script uses %s, which the catalogue lacks", lang, id[1])
			}
		}
		for _, c := range dashboardCharts {
			if _, ok := msgs["dashboard.chart."+c]; !ok {
				t.Errorf("%s: no title for chart %s", lang, c)
			}
		}
	}
	// The script builds the page with text, never markup.
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(dashboardJS, bad) {
			t.Errorf("the script uses %s", bad)
		}
	}
}

func TestDashboardSummary(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmgate_requests_total", Help: "h"}, []string{"route", "method", "code", "outcome"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmgate_rejected_requests_total", Help: "h"}, []string{"reason"})
	actions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmgate_session_actions_total", Help: "h"}, []string{"action"})
	checks := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmgate_session_fingerprint_checks_total", Help: "h"}, []string{"result"})
	emitted := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmgate_audit_events_emitted_total", Help: "h"}, []string{"type"})
	spool := prometheus.NewGauge(prometheus.GaugeOpts{Name: "crmgate_audit_spool_bytes", Help: "h"})
	strict := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crmgate_audit_strict_write_seconds", Help: "h"})
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "crmgate_tls_handshakes_total", Help: "h"})
	reg.MustRegister(requests, rejected, actions, checks, emitted, spool, strict, other)
	requests.WithLabelValues("crm", "GET", "200", "forwarded").Add(7)
	requests.WithLabelValues("api", "GET", "200", "forwarded").Add(3)
	requests.WithLabelValues("crm", "DELETE", "403", "denied").Add(3)
	requests.WithLabelValues("crm", "DELETE", "401", "step_up").Add(2)
	requests.WithLabelValues("api", "GET", "429", "rate_limited").Add(4)
	requests.WithLabelValues("crm", "GET", "401", "session_revoked").Add(1)
	rejected.WithLabelValues("policy").Add(3)
	rejected.WithLabelValues("rate_limited").Add(4)
	actions.WithLabelValues("revoke").Add(1)
	actions.WithLabelValues("step_up").Add(2)
	checks.WithLabelValues("match").Add(5)
	checks.WithLabelValues("changed").Add(1)
	emitted.WithLabelValues("http.request").Add(19)
	emitted.WithLabelValues("session.hijack_suspected").Add(1)
	spool.Set(123)
	strict.Observe(0.5)
	other.Add(9)

	s := New(Config{Listen: "127.0.0.1:0", Token: secret.FromValue([]byte(token))}, slog.New(slog.DiscardHandler), reg)
	h := s.Handler()
	want := Summary{
		Series:            SummarySeries{Requests: 20, Denials: 3, StepUps: 2, RateLimited: 4, Hijacks: 1},
		RequestsByOutcome: map[string]float64{"forwarded": 10, "denied": 3, "step_up": 2, "rate_limited": 4, "session_revoked": 1},
		RequestsByCode:    map[string]float64{"200": 10, "403": 3, "401": 3, "429": 4},
		RejectedByReason:  map[string]float64{"policy": 3, "rate_limited": 4},
		SessionActions:    map[string]float64{"revoke": 1, "step_up": 2},
		FingerprintChecks: map[string]float64{"match": 5, "changed": 1},
		Audit:             map[string]float64{"crmgate_audit_events_emitted_total": 20, "crmgate_audit_spool_bytes": 123},
	}
	summary := func() Summary {
		t.Helper()
		w := get(h, "GET", "/dashboard/api/summary", bearer...)
		var got Summary
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
			t.Fatalf("summary: %d %s", w.Code, w.Body)
		}
		if time.Since(got.Time) > time.Minute {
			t.Errorf("summary time %v", got.Time)
		}
		return got
	}
	if d := cmp.Diff(summary(), want, cmpopts.IgnoreFields(Summary{}, "Time")); d != "" {
		t.Errorf("summary (-got +want):\n%s", d)
	}

	reload := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetPolicyStatus(func() PolicyStatus {
		return PolicyStatus{Revision: "sha256:abc", LastResult: "error", LastError: "rego_parse_error", LastReload: reload}
	})
	requests.WithLabelValues("crm", "GET", "200", "forwarded").Inc()
	want.Series.Requests++
	want.RequestsByOutcome["forwarded"]++
	want.RequestsByCode["200"]++
	want.Policy = &PolicyJSON{Revision: "sha256:abc", LastResult: "error", LastError: "rego_parse_error", LastReload: reload}
	if d := cmp.Diff(summary(), want, cmpopts.IgnoreFields(Summary{}, "Time")); d != "" {
		t.Errorf("summary with a policy (-got +want):\n%s", d)
	}
}

// A gateway without any of the series (no traffic yet, no audit trail)
// answers zeros and empty maps, and no policy.
func TestDashboardSummaryEmpty(t *testing.T) {
	w := get(newTestServer(Config{}).Handler(), "GET", "/dashboard/api/summary")
	for _, want := range []string{`"series":{"requests":0,"denials":0,"step_ups":0,"rate_limited":0,"hijacks":0}`, `"audit":{}`, `"policy":null`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("empty summary lacks %s: %s", want, w.Body)
		}
	}
}

func feedEvents(n int) []FeedEvent {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]FeedEvent, n)
	for i := range out {
		e := FeedEvent{Time: now.Add(-time.Duration(i) * time.Second), Type: "http.request", Severity: "info",
			Subject: "alice", ClientIP: "192.0.2.1", Route: "crm", Method: "GET", Path: fmt.Sprintf("/api/contacts/%d", i), Status: 200}
		switch i % 5 {
		case 1:
			e.Type, e.Status, e.Subject = "http.request", 403, "bob"
		case 2:
			e.Type, e.Status, e.Method, e.Path = "auth.login.failure", 0, "", ""
		case 3:
			e.Type, e.Severity, e.Status = "session.hijack_suspected", "high", 401
		case 4:
			e.Type, e.Status = "authz.custom", 502
		}
		out[i] = e
	}
	return out
}

func TestDashboardEvents(t *testing.T) {
	feed := &fakeFeed{events: feedEvents(600)}
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	h := s.Handler()

	w := get(h, "GET", "/dashboard/api/events", bearer...)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"enabled":false`) || !strings.Contains(w.Body.String(), `"events":[]`) {
		t.Fatalf("without a feed: %d %s, want enabled false and no events", w.Code, w.Body)
	}
	s.SetEventFeed(feed)

	tests := []struct {
		query string
		count int
		// scan is the limit the feed was asked for.
		scan  int
		check func(FeedEvent) bool
	}{
		{"", 50, 50, nil},
		{"?limit=3", 3, 3, nil},
		{"?limit=500", 500, 500, nil},
		{"?status=4xx", 50, eventScan, func(e FeedEvent) bool { return e.Status/100 == 4 }},
		{"?status=5xx&limit=500", 120, eventScan, func(e FeedEvent) bool { return e.Status == 502 }},
		{"?type=auth", 50, eventScan, func(e FeedEvent) bool { return e.Type == "auth.login.failure" }},
		{"?type=auth.", 50, eventScan, func(e FeedEvent) bool { return e.Type == "auth.login.failure" }},
		{"?type=session.hijack_suspected&limit=10", 10, eventScan, func(e FeedEvent) bool { return e.Type == "session.hijack_suspected" }},
		{"?type=session.hijack", 0, eventScan, nil},
		{"?subject=bob&limit=500", 120, eventScan, func(e FeedEvent) bool { return e.Subject == "bob" }},
		{"?subject=Bob", 0, eventScan, nil},
		{"?subject=bob&status=4xx&type=http.request&limit=5", 5, eventScan, func(e FeedEvent) bool { return e.Subject == "bob" && e.Status == 403 }},
		{"?type=%20auth%20", 50, eventScan, func(e FeedEvent) bool { return e.Type == "auth.login.failure" }},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			w := get(h, "GET", "/dashboard/api/events"+tt.query, bearer...)
			var got EventsResponse
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
				t.Fatalf("events%s: %d %s", tt.query, w.Code, w.Body)
			}
			if !got.Enabled || got.Count != tt.count || len(got.Events) != tt.count {
				t.Errorf("events%s: enabled %v, count %d, %d events; want %d", tt.query, got.Enabled, got.Count, len(got.Events), tt.count)
			}
			if l := feed.lastLimit(); l != tt.scan {
				t.Errorf("events%s asked the feed for %d, want %d", tt.query, l, tt.scan)
			}
			for i, e := range got.Events {
				if tt.check != nil && !tt.check(e) {
					t.Fatalf("events%s: event %d does not match: %+v", tt.query, i, e)
				}
				if i > 0 && e.Time.After(got.Events[i-1].Time) {
					t.Fatalf("events%s: not newest first at %d", tt.query, i)
				}
			}
		})
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?limit=x", "?limit=-1", "?status=4XX", "?status=9xx", "?status=4", "?type=" + strings.Repeat("a", 257)} {
		t.Run("refused "+q[:min(len(q), 20)], func(t *testing.T) {
			if w := get(h, "GET", "/dashboard/api/events"+q, bearer...); w.Code != 400 {
				t.Errorf("events%s = %d %s, want 400", q, w.Code, w.Body)
			}
		})
	}
	// A feed that hands back more than asked is cut to the limit.
	feed.ignoreLimit = true
	w = get(h, "GET", "/dashboard/api/events?limit=2", bearer...)
	if !strings.Contains(w.Body.String(), `"count":2,"scanned":2`) {
		t.Errorf("a feed ignoring its limit: %s", w.Body)
	}
}

// Event fields are attacker-controlled (a path, a user name, a message
// quoting a request): the JSON escapes markup so that even a page that
// mishandled it would not see a tag.
func TestDashboardEventsEscapeMarkup(t *testing.T) {
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	s.SetEventFeed(&fakeFeed{events: []FeedEvent{{Type: "http.request", Subject: "<script>alert(1)</script>", Path: `/x"><img src=x onerror=alert(2)>`}}})
	w := get(s.Handler(), "GET", "/dashboard/api/events", bearer...)
	if body := w.Body.String(); strings.ContainsAny(body, "<>") || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("events: %s %v", body, w.Header())
	}
}

// The sessions panel revokes through DELETE /sessions/{hash} with the
// bearer token: the session ends and the revocation is an admin event.
func TestDashboardRevoke(t *testing.T) {
	m, cookies := sessionsFixture(t)
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	s.SetSessions(m)
	var events []Event
	s.SetEvents(func(_ context.Context, e Event) { events = append(events, e) })
	h := s.Handler()
	list, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var bob string
	for _, x := range list {
		if x.UserID == "bob" {
			bob = x.Hash
		}
	}
	if w := send(h, "DELETE", "/sessions/"+bob, ""); w.Code != 401 || !alive(m, cookies["bob"][0]) {
		t.Fatalf("revoke without the token: %d, alive %v", w.Code, alive(m, cookies["bob"][0]))
	}
	if w := send(h, "DELETE", "/sessions/"+bob, "", bearer...); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if alive(m, cookies["bob"][0]) || !alive(m, cookies["alice"][0]) {
		t.Error("the revocation ended the wrong sessions")
	}
	if len(events) != 1 || events[0].Type != "session.revoked" || events[0].Target != "session:"+bob {
		t.Errorf("events %+v", events)
	}
}
