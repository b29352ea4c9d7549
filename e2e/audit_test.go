package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// auditedRequest is a request a test made and the answer it got.
type auditedRequest struct {
	name   string
	rid    string // X-Request-Id of the answer
	status int
}

// Every request, whatever its outcome, is one http.request event with the
// answer's status and request id: forwarded, no route, a refused path, no
// credentials, a policy denial, a rate limit, a step-up, an upstream
// timeout and refusals at intake.
func TestAuditEveryRequestOutcome(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	log := d.auditFiles(t).Log
	carol, bob := d.session(t, "carol"), d.session(t, "bob")

	var reqs []auditedRequest
	expect := func(name string, res *http.Response, want int) {
		t.Helper()
		rid := res.Header.Get("X-Request-Id")
		if res.StatusCode != want || rid == "" {
			t.Fatalf("%s: %d with X-Request-Id %q, want %d and an id", name, res.StatusCode, rid, want)
		}
		reqs = append(reqs, auditedRequest{name: name, rid: rid, status: want})
	}
	get := func(path string, hdr ...string) *http.Response {
		t.Helper()
		res, _ := d.get(t, path, hdr...)
		return res
	}
	json := []string{"Accept", "application/json"}

	expect("forwarded", get("/api/contacts/1", "Cookie", carol), 200)
	expect("no route", get("/no/such/route"), 404)
	expect("unauthenticated", get("/api/contacts/1"), 401)
	expect("policy denied", get("/api/deals", "Cookie", bob), 403)
	expect("step-up asked of a script", get("/api/admin/users", append(json, "Cookie", carol)...), 401)
	expect("upstream timeout", get("/api/slow?ms=5000"), 504)
	raw := func(payload string) *http.Response { res, _ := firstResponse(t, d.raw(t, payload)); return res }
	expect("encoded dot-segment in the path", raw("GET /api/contacts/..%2fadmin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 400)
	expect("repeated Authorization at intake", raw("GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n"), 400)
	expect("unknown method at intake", raw("BREW /api/whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 405)

	// A burst on the standard tier (burst 20, 10/s): every answer, 200 or
	// 429, is one event.
	key := d.apiKey(t, "integration-read")
	limited := 0
	for i := range 30 {
		res := get("/api/deals", "X-API-Key", key)
		if res.StatusCode == 429 {
			limited++
		}
		expect(fmt.Sprintf("API key burst request %d", i), res, res.StatusCode)
	}
	if limited == 0 {
		t.Fatal("30 requests in a burst on the standard tier were never rate-limited: the 429 case proves nothing")
	}

	for _, r := range reqs {
		waitAudit(t, log, fmt.Sprintf("for %s (request %s)", r.name, r.rid), requestEvent(r.rid))
	}
	// Late duplicates would come within the same ~100 ms.
	time.Sleep(500 * time.Millisecond)
	evs := readAudit(t, log)
	for _, r := range reqs {
		got := filterAudit(evs, requestEvent(r.rid))
		if len(got) != 1 {
			var lines []string
			for _, e := range got {
				lines = append(lines, e.describe())
			}
			t.Errorf("%s (request %s): %d http.request events, want exactly 1:\n%s", r.name, r.rid, len(got), strings.Join(lines, "\n"))
			continue
		}
		e := got[0]
		wantStatusID := int64(1)
		if r.status >= 400 {
			wantStatusID = 2
		}
		if code := e.num("http_response.code"); code != int64(r.status) {
			t.Errorf("%s (request %s): http_response.code = %d, want the answered %d\n%s", r.name, r.rid, code, r.status, e.describe())
		}
		if e.num("class_uid") != 4002 || e.num("category_uid") != 4 || e.num("type_uid") != 4002*100+e.num("activity_id") || e.num("status_id") != wantStatusID {
			t.Errorf("%s (request %s): OCSF ids class %d category %d type %d activity %d status %d, want HTTP Activity 4002/4, type_uid = 400200 + activity, status_id %d\n%s",
				r.name, r.rid, e.num("class_uid"), e.num("category_uid"), e.num("type_uid"), e.num("activity_id"), e.num("status_id"), wantStatusID, e.describe())
		}
		if c := e.str("metadata.correlation_uid"); c != r.rid {
			t.Errorf("%s (request %s): metadata.correlation_uid = %q, want the request id", r.name, r.rid, c)
		}
	}
	t.Logf("%d requests (%d rate-limited), each exactly one http.request event", len(reqs), limited)
}

// A request whose head is larger than server.max_header_bytes is refused
// before the gateway's handler runs; it is a request all the same, and the
// trail promises one event for every request, whatever its outcome.
func TestAuditOversizedHeadRefusal(t *testing.T) {
	d := startDemo(t)
	log := d.auditFiles(t).Log
	marker := fmt.Sprintf("/api/whoami/oversized-%d", time.Now().UnixNano())
	reply := d.raw(t, "GET "+marker+" HTTP/1.1\r\nHost: localhost\r\nX-Big: "+strings.Repeat("a", 128<<10)+"\r\n\r\n")
	res, _ := firstResponse(t, reply)
	if res.StatusCode != 431 && res.StatusCode != 400 {
		t.Fatalf("oversized head: %d, want 431 or 400", res.StatusCode)
	}
	if rid := res.Header.Get("X-Request-Id"); rid != "" {
		got := waitAudit(t, log, "for the oversized head", requestEvent(rid))
		if len(got) != 1 || got[0].num("http_response.code") != int64(res.StatusCode) {
			t.Errorf("oversized head (request %s): %d events, want 1 with code %d", rid, len(got), res.StatusCode)
		}
		return
	}
	// Refused while its head was read: the event names the framing rule
	// it broke (the head itself, attacker's bytes, is not copied).
	time.Sleep(500 * time.Millisecond)
	got := filterAudit(readAudit(t, log), func(e auditEvent) bool {
		return e.typ() == "http.request" && e.str("unmapped.reason") == "framing: request head too large" &&
			e.num("http_response.code") == int64(res.StatusCode) && e.str("src_endpoint.ip") == "127.0.0.1"
	})
	if len(got) != 1 {
		t.Errorf("an oversized head was answered %d without an X-Request-Id, and %d http.request events record it, want 1: "+
			"refusals by the HTTP server before the gateway's handler are not in the audit trail\nreply: %q",
			res.StatusCode, len(got), tail(reply, 300))
	}
}
