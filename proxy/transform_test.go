package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// fixedPolicy answers every request with one decision.
type fixedPolicy struct{ d policy.Decision }

func (p fixedPolicy) Input(*scope.Scope, *http.Request) *policy.Input { return &policy.Input{} }
func (p fixedPolicy) Decide(context.Context, *policy.Input, string) policy.Decision {
	return p.d
}

const ssn = "078-05-1120"

// salesView is the shipped sales view of a contact list: ssn removed,
// credit_card masked to the last 4, rows filtered to alice's.
var salesView = policy.Decision{
	Allow: true,
	Redact: []policy.Redaction{
		{Path: "$..ssn", Action: policy.ActionRemove},
		{Path: "$..credit_card", Action: policy.ActionMask, KeepLast: 4},
	},
	Filter: []policy.Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}},
}

// recordView is the sales view of a single contact ("$" must be alice's).
var recordView = policy.Decision{
	Allow:  true,
	Redact: salesView.Redact,
	Filter: []policy.Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}},
}

const contactList = `{"items":[` +
	`{"id":1,"owner":"alice","ssn":"` + ssn + `","credit_card":"4111111111111111"},` +
	`{"id":2,"owner":"bob","ssn":"219-09-9999","credit_card":"5500000000000004"}],"total":2}`

// scriptedUpstream answers with whatever the test's respond says, and
// keeps the last request's headers.
type scriptedUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	respond func(w http.ResponseWriter, r *http.Request)
	seen    http.Header
}

func newScriptedUpstream(t testing.TB) *scriptedUpstream {
	u := &scriptedUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = r.Header.Clone()
		respond := u.respond
		u.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *scriptedUpstream) set(f func(w http.ResponseWriter, r *http.Request)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.respond = f
}

func (u *scriptedUpstream) lastHeader() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.seen
}

// body answers with b as ct, with extra headers as pairs.
func body(ct, b string, hdr ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		if w.Header().Get("Content-Encoding") == "" && w.Header().Get("Content-Length") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		_, _ = io.WriteString(w, b)
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return b.String()
}

func zlibbed(s string) string {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return b.String()
}

func rawDeflated(s string) string {
	var b bytes.Buffer
	zw, _ := flate.NewWriter(&b, flate.BestSpeed)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return b.String()
}

func transformGateway(t testing.TB, up string, d policy.Decision, mod func(*Config), deps Deps) *Gateway {
	t.Helper()
	deps.Policy = fixedPolicy{d}
	c := Config{
		Upstreams: map[string]UpstreamConfig{"crm": {URL: up}},
		Routes: []RouteConfig{
			{ID: "contacts.list", Path: "/api/contacts", Methods: []string{"GET", "HEAD", "POST"}, Upstream: "crm", Auth: AuthNone},
			{ID: "contacts.item", Path: "/api/contacts/{id}", Methods: []string{"GET", "HEAD", "PUT"}, Upstream: "crm", Auth: AuthNone},
			{ID: "export", Path: "/api/export", Upstream: "crm", Auth: AuthNone, RedactUntransformable: UntransformablePass},
			{ID: "cached", Path: "/api/cached", Upstream: "crm", Auth: AuthNone, Cache: "upstream"},
			{ID: "ws", Path: "/api/ws", Upstream: "crm", Auth: AuthNone, WebSocket: true},
		},
	}
	if mod != nil {
		mod(&c)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	g, err := New(c, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestTransformResponses(t *testing.T) {
	up := newScriptedUpstream(t)
	const redacted = `{"items":[{"id":1,"owner":"alice","credit_card":"****1111"}],"total":2}`
	tests := []struct {
		name     string
		decision policy.Decision
		method   string
		target   string
		reqHdr   []string
		respond  func(http.ResponseWriter, *http.Request)
		want     int
		wantBody string // exact, when set
		wantHdr  map[string]string
		noHdr    []string
	}{
		{name: "JSON list redacted and filtered", decision: salesView, target: "/api/contacts",
			respond: body("application/json; charset=utf-8", contactList, "Etag", `"v1"`, "Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT",
				"Accept-Ranges", "bytes", "Content-Md5", "x", "Digest", "sha-256=x"),
			want: 200, wantBody: redacted,
			// The upstream's length is dropped; the transformed body,
			// read whole, states its own.
			wantHdr: map[string]string{"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", "Content-Length": strconv.Itoa(len(redacted))},
			noHdr:   []string{"Etag", "Last-Modified", "Accept-Ranges", "Content-Md5", "Digest"}},
		{name: "+json type", decision: salesView, target: "/api/contacts",
			respond: body("application/vnd.crm+json", contactList), want: 200, wantBody: redacted},
		{name: "a charset other than utf-8 is refused", decision: salesView, target: "/api/contacts",
			respond: body("application/json; charset=iso-8859-1", contactList), want: 502},
		{name: "gzip the gateway did not ask for is decoded", decision: salesView, target: "/api/contacts",
			respond: body("application/json", gzipped(contactList), "Content-Encoding", "gzip"), want: 200, wantBody: redacted,
			wantHdr: map[string]string{"Content-Length": strconv.Itoa(len(redacted))},
			noHdr:   []string{"Content-Encoding"}},
		{name: "deflate (zlib) is decoded", decision: salesView, target: "/api/contacts",
			respond: body("application/json", zlibbed(contactList), "Content-Encoding", "deflate"), want: 200, wantBody: redacted,
			noHdr: []string{"Content-Encoding"}},
		{name: "raw deflate is decoded", decision: salesView, target: "/api/contacts",
			respond: body("application/json", rawDeflated(contactList), "Content-Encoding", "deflate"), want: 200, wantBody: redacted},
		{name: "a body that is not gzip although it says so", decision: salesView, target: "/api/contacts",
			respond: body("application/json", contactList, "Content-Encoding", "gzip"), want: 502},
		{name: "br cannot be decoded", decision: salesView, target: "/api/contacts",
			respond: body("application/json", "\x0b\x02\x80garbage", "Content-Encoding", "br"), want: 502},
		{name: "two codings are refused", decision: salesView, target: "/api/contacts",
			respond: body("application/json", gzipped(gzipped(contactList)), "Content-Encoding", "gzip, gzip"), want: 502},
		{name: "CSV is refused", decision: salesView, target: "/api/contacts",
			respond: body("text/csv", "id,owner,ssn\n2,bob,"+ssn+"\n"), want: 502},
		{name: "HTML is refused", decision: salesView, target: "/api/contacts",
			respond: body("text/html", "<td>"+ssn+"</td>"), want: 502},
		{name: "no content type is refused", decision: salesView, target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = nil // no sniffing
				_, _ = io.WriteString(w, contactList)
			}, want: 502},
		{name: "two content types are refused", decision: salesView, target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{"application/json", "text/csv"}
				_, _ = io.WriteString(w, contactList)
			}, want: 502},
		{name: "CSV passes on a route that opts in", decision: salesView, target: "/api/export",
			respond: body("text/csv", "id,owner\n1,alice\n"), want: 200, wantBody: "id,owner\n1,alice\n",
			noHdr: []string{"Content-Length"}},
		{name: "JSON is still redacted on a route that passes other types", decision: salesView, target: "/api/export",
			respond: body("application/json", contactList), want: 200, wantBody: redacted},
		{name: "HEAD is untouched but for the representation headers", decision: salesView, method: "HEAD", target: "/api/contacts",
			respond: body("application/json", contactList, "Etag", `"v1"`), want: 200, wantBody: "",
			noHdr: []string{"Content-Length", "Etag"}},
		{name: "204", decision: salesView, target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, want: 204, wantBody: ""},
		{name: "304 the upstream sends anyway", decision: salesView, target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Etag", `"v1"`)
				w.WriteHeader(304)
			}, want: 304, wantBody: "", noHdr: []string{"Etag"}},
		{name: "an empty body has nothing to redact", decision: policy.Decision{Allow: true, Redact: salesView.Redact}, method: "POST", target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }, want: 201, wantBody: ""},
		{name: "a 206 the upstream sends anyway is refused", decision: salesView, target: "/api/contacts",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Range", "bytes 0-9/100")
				w.WriteHeader(206)
				_, _ = io.WriteString(w, `{"ssn":"07`)
			}, want: 502},
		{name: "a small malformed body is a clean 502", decision: salesView, target: "/api/contacts",
			respond: body("application/json", `{"items":[{"owner":"alice","ssn":"`+ssn+`",}]}`), want: 502},
		{name: "a filter that finds no rows (an error body) is refused", decision: salesView, target: "/api/contacts",
			respond: body("application/json", `{"error":"boom","ssn":"`+ssn+`"}`), want: 502},
		{name: "a record of someone else is not found", decision: recordView, target: "/api/contacts/2",
			respond: body("application/json", `{"id":2,"owner":"bob","ssn":"219-09-9999"}`), want: 404},
		{name: "a filter alone on a record of someone else is not found",
			decision: policy.Decision{Allow: true, Filter: recordView.Filter}, target: "/api/contacts/2",
			respond: body("application/json", `{"id":2,"owner":"bob","ssn":"219-09-9999"}`), want: 404},
		{name: "a record of the caller's own", decision: recordView, target: "/api/contacts/1",
			respond: body("application/json", `{"id":1,"owner":"alice","ssn":"`+ssn+`","credit_card":"4111111111111111"}`),
			want:    200, wantBody: `{"id":1,"owner":"alice","credit_card":"****1111"}`},
		// Attack: member names spelled with escapes and given twice, so
		// that a client keeping the first or the last copy gets the ssn.
		{name: "escaped and duplicate member names", decision: recordView, target: "/api/contacts/1",
			respond: body("application/json", `{"id":1,"owner":"alice","s\u0073n":"`+ssn+`","ssn":"x","ssn":"`+ssn+`","\u0073sn":"`+ssn+`"}`),
			want:    200, wantBody: `{"id":1,"owner":"alice"}`},
		// Attack: a row that names its owner twice passes for neither.
		{name: "duplicate owner in a row", decision: salesView, target: "/api/contacts",
			respond: body("application/json", `{"items":[{"owner":"alice","owner":"bob","ssn":"`+ssn+`"}]}`),
			want:    200, wantBody: `{"items":[]}`},
		{name: "cache upstream becomes private", decision: salesView, target: "/api/cached",
			respond: body("application/json", contactList, "Cache-Control", "public, max-age=60, s-maxage=600"), want: 200,
			wantHdr: map[string]string{"Cache-Control": "private, max-age=60", "Vary": "Cookie, Authorization"}},
		{name: "cache upstream without a transform is the upstream's", decision: policy.Decision{Allow: true}, target: "/api/cached",
			respond: body("application/json", contactList, "Cache-Control", "public, max-age=60"), want: 200,
			wantBody: contactList, wantHdr: map[string]string{"Cache-Control": "public, max-age=60"}},
		{name: "a WebSocket upgrade cannot be redacted", decision: salesView, target: "/api/ws",
			reqHdr: []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Connection", "Upgrade")
				w.Header().Set("Upgrade", "websocket")
				w.WriteHeader(101)
			}, want: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := transformGateway(t, up.URL, tt.decision, nil, Deps{})
			up.set(tt.respond)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req(method, tt.target, tt.reqHdr...))
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d; body %s", method, tt.target, w.Code, tt.want, w.Body)
			}
			got := w.Body.String()
			if tt.wantBody != "" || tt.want == 200 && tt.method == "HEAD" || tt.want == 204 || tt.want == 304 {
				if got != tt.wantBody {
					t.Errorf("body = %s, want %s", got, tt.wantBody)
				}
			}
			for _, leak := range []string{ssn, "219-09-9999", "4111111111111111", "5500000000000004"} {
				if strings.Contains(got, leak) && tt.target != "/api/cached" {
					t.Errorf("body shows %s: %s", leak, got)
				}
			}
			if tt.want >= 400 {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("refusal Content-Type = %q", ct)
				}
			}
			for k, v := range tt.wantHdr {
				if got := strings.Join(w.Header().Values(k), ", "); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, k := range tt.noHdr {
				if v, ok := w.Header()[k]; ok {
					t.Errorf("%s = %q, want none", k, v)
				}
			}
			if cl := w.Header().Get("Content-Length"); cl != "" && method == "GET" && cl != strconv.Itoa(w.Body.Len()) {
				t.Errorf("Content-Length = %s for a body of %d bytes", cl, w.Body.Len())
			}
		})
	}
}

// Attack: Range, validators and Accept-Encoding would have the upstream
// send a part, a bodiless 304 or a coding the transform cannot read.
func TestTransformUpstreamRequest(t *testing.T) {
	up := newScriptedUpstream(t)
	up.set(body("application/json", contactList))
	hdr := []string{"Range", "bytes=0-99", "If-Range", `"v1"`, "If-None-Match", `"v1"`, "If-Modified-Since", "Mon, 01 Jan 2024 00:00:00 GMT",
		"Accept-Encoding", "br, gzip, deflate"}
	for _, tt := range []struct {
		name     string
		decision policy.Decision
		want     http.Header
	}{
		{"with a transform", salesView, http.Header{"Accept-Encoding": {"identity"}}},
		{"without", policy.Decision{Allow: true}, http.Header{"Range": {"bytes=0-99"}, "If-Range": {`"v1"`}, "If-None-Match": {`"v1"`},
			"If-Modified-Since": {"Mon, 01 Jan 2024 00:00:00 GMT"}, "Accept-Encoding": {"br, gzip, deflate"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := transformGateway(t, up.URL, tt.decision, nil, Deps{})
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req("GET", "/api/contacts", hdr...))
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			got := http.Header{}
			for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "Accept-Encoding"} {
				if v := up.lastHeader()[k]; v != nil {
					got[k] = v
				}
			}
			if d := cmp.Diff(got, tt.want); d != "" {
				t.Errorf("upstream request headers (-got +want):\n%s", d)
			}
		})
	}
}

func TestTransformDenials(t *testing.T) {
	up := newScriptedUpstream(t)
	up.set(body("application/json", contactList))
	for _, tt := range []struct {
		name     string
		decision policy.Decision
		method   string
		target   string
	}{
		// On a write, a filter is a precondition on the stored record,
		// which the gateway cannot check.
		{"a filter on a write", recordView, "PUT", "/api/contacts/2"},
		{"a path outside the subset", policy.Decision{Allow: true, Redact: []policy.Redaction{{Path: "$.items[-1]", Action: "remove"}}}, "GET", "/api/contacts"},
		{"a hash without a key", policy.Decision{Allow: true, Redact: []policy.Redaction{{Path: "$..email", Action: "hash"}}}, "GET", "/api/contacts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := transformGateway(t, up.URL, tt.decision, nil, Deps{})
			up.set(func(w http.ResponseWriter, r *http.Request) {
				t.Errorf("forwarded %s %s", r.Method, r.URL)
			})
			w := httptest.NewRecorder()
			g.ServeHTTP(w, req(tt.method, tt.target))
			if w.Code != 403 {
				t.Fatalf("status %d, want 403", w.Code)
			}
		})
	}
}

// The transform's statistics reach the request log line and the metrics.
func TestTransformStats(t *testing.T) {
	up := newScriptedUpstream(t)
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	g := transformGateway(t, up.URL, salesView, nil, Deps{Metrics: reg, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	up.set(body("application/json", contactList))
	if w, _ := do(g, req("GET", "/api/contacts")); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	up.set(body("text/csv", "a,b\n"))
	if w, _ := do(g, req("GET", "/api/contacts")); w.Code != 502 {
		t.Fatalf("status %d", w.Code)
	}
	var redactLines []any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] == "request" {
			redactLines = append(redactLines, m["redact"])
		}
	}
	want := []any{
		map[string]any{"result": "redacted", "values": 2.0, "rows_kept": 1.0, "rows_dropped": 1.0},
		map[string]any{"result": "refused", "values": 0.0, "rows_kept": 0.0, "rows_dropped": 0.0},
	}
	if d := cmp.Diff(redactLines, want); d != "" {
		t.Errorf("request log redact groups (-got +want):\n%s", d)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "crmgate_redact_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			got[name] = m.GetCounter().GetValue()
		}
	}
	wantM := map[string]float64{
		"crmgate_redact_responses_total{result=redacted}": 1,
		"crmgate_redact_responses_total{result=refused}":  1,
		"crmgate_redact_values_total":                     2,
		"crmgate_redact_rows_total{row=kept}":             1,
		"crmgate_redact_rows_total{row=dropped}":          1,
	}
	if d := cmp.Diff(got, wantM); d != "" {
		t.Errorf("metrics (-got +want):\n%s", d)
	}
}

// Attack: a body that breaks after the first buffer has gone out (a
// truncated upstream, malformed JSON deep in an export) must never look
// complete to the client: the connection is cut, and what was sent was
// redacted.
func TestTransformAbortsBrokenStream(t *testing.T) {
	up := newScriptedUpstream(t)
	g := transformGateway(t, up.URL, salesView, nil, Deps{})
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	var rows strings.Builder
	rows.WriteString(`{"items":[`)
	for i := range 2000 {
		fmt.Fprintf(&rows, `{"id":%d,"owner":"alice","ssn":"%s","credit_card":"4111111111111111"},`, i, ssn)
	}
	prefix := rows.String()
	for _, tt := range []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request)
	}{
		{"malformed", body("application/json", prefix+`{"owner":"alice","ssn":"`+ssn+`",}]}`)},
		{"truncated", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(prefix)+100))
			_, _ = io.WriteString(w, prefix)
		}},
		{"truncated gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			z := gzipped(prefix + `{"id":0}]}`)
			_, _ = io.WriteString(w, z[:len(z)-8]) // no checksum and size
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up.set(tt.respond)
			res, err := srv.Client().Get(srv.URL + "/api/contacts")
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("status %d; the transform should have streamed", res.StatusCode)
			}
			b, err := io.ReadAll(res.Body)
			if err == nil {
				t.Errorf("the body read completely (%d bytes, ends %q); want an aborted connection", len(b), b[max(0, len(b)-20):])
			}
			if len(b) == 0 || strings.Contains(string(b), ssn) || strings.Contains(string(b), "4111111111111111") {
				t.Errorf("sent %d bytes; shows the ssn or card: %v", len(b), strings.Contains(string(b), ssn))
			}
		})
	}
}

// The hash action uses the configured key (redact.hash_key).
func TestTransformHashKey(t *testing.T) {
	up := newScriptedUpstream(t)
	up.set(body("application/json", `{"id":7,"owner":"alice","email":"ada@example.com"}`))
	d := policy.Decision{Allow: true, Redact: []policy.Redaction{{Path: "$..email", Action: policy.ActionHash}}}
	g := transformGateway(t, up.URL, d, func(c *Config) {
		c.Redact.HashKey = secret.FromValue(bytes.Repeat([]byte{0x5c}, 32))
	}, Deps{})
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req("GET", "/api/contacts/7"))
	if got, want := w.Body.String(), `{"id":7,"owner":"alice","email":"hmac:yC3J390CtcfTnu9nGzg9SQ"}`; w.Code != 200 || got != want {
		t.Errorf("GET = %d %s, want 200 %s", w.Code, got, want)
	}
}

// record2KB is a contact of about 2 KB, the size of a CRM record.
func record2KB(owner string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":42,"owner":%q,"name":"Ada Lovelace","email":"ada@example.com","phone":"+44 20 7946 0958","ssn":"%s","credit_card":"4111111111111111","notes":[`, owner, ssn)
	for i := 0; b.Len() < 2000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"at":"2026-01-%02dT10:00:00Z","by":"alice","text":"Called about the renewal of contract %d; follow up next week."}`, i%28+1, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// BenchmarkTransformRecord2KB is one 2 KB contact through the gateway
// with the sales view and its owner filter on "$" (compiled per request,
// as decide does), against the same route and decision without them.
func BenchmarkTransformRecord2KB(b *testing.B) {
	rec := record2KB("alice")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(rec)))
		_, _ = io.WriteString(w, rec)
	}))
	b.Cleanup(up.Close)
	for _, bb := range []struct {
		name string
		d    policy.Decision
	}{{"plain", policy.Decision{Allow: true}}, {"redacted", recordView}} {
		b.Run(bb.name, func(b *testing.B) {
			g := transformGateway(b, up.URL, bb.d, nil, Deps{})
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for b.Loop() {
				r := req("GET", "/api/contacts/42", "User-Agent", "bench", "Accept", "application/json")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body)
				}
			}
		})
	}
}
