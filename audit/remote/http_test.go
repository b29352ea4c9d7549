package remote

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/secret"
)

// collector is an httptest TLS server that records every POST.
type collector struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	answer func(n int, w http.ResponseWriter) // nil: 200
}

type recorded struct {
	header http.Header
	body   []byte // decompressed
	raw    int    // bytes on the wire
}

func startCollector(t testing.TB, pki *testPKI, mTLS bool) *collector {
	t.Helper()
	c := &collector{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		body := raw
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				w.WriteHeader(400)
				return
			}
			body, _ = io.ReadAll(zr)
		}
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, recorded{header: r.Header.Clone(), body: body, raw: len(raw)})
		answer := c.answer
		c.mu.Unlock()
		if answer != nil {
			answer(n, w)
		}
	}))
	c.srv.TLS = pki.serverTLS(mTLS)
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) requests() []recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]recorded(nil), c.reqs...)
}

func newTestHTTP(t testing.TB, cfg HTTPConfig) *HTTP {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	s, err := NewHTTP(cfg, nil)
	if err != nil {
		t.Fatalf("NewHTTP() = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// hostileEvents are what an attacker controls parts of: request paths,
// user agents, names.
func hostileEvents() [][]byte {
	return [][]byte{
		event("u1", 1, "http.request", "plain"),
		event("u2", 2, "http.request", "line1\nline2\r\n{\"index\":{}}\n"),
		event("u3", 3, "http.request", `quote " backslash \ "},{"injected":true`),
		event("u4", 4, "http.request", "non-ASCII é 日本語 🚀 \u2028\u2029"),
		event("u5", 5, "http.request", "template {{event}} {{event_string}} {{time_ns}} {{ event }}"),
		[]byte("{\n  \"metadata\": {\"uid\": \"u6\"},\n  \"time\": 1767366245123,\n  \"pretty\": \"yes\"\n}"),
	}
}

// sameJSON compares two JSON texts by value.
func sameJSON(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("received %q: %v", got, err)
		return false
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return cmp.Equal(g, w)
}

var hecToken = secret.FromValue([]byte("Zm9vYmFyYmF6cXV4cXV1eHF1dXo0MjQyNDI0MjQyNDI0MjQy"))

func TestHTTPFormats(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name        string
		cfg         HTTPConfig
		contentType string
		// events decodes a body into the events it carries.
		events func(t *testing.T, body []byte) [][]byte
	}{
		{
			name:        "ndjson",
			cfg:         HTTPConfig{},
			contentType: "application/x-ndjson",
			events: func(t *testing.T, body []byte) [][]byte {
				if !bytes.HasSuffix(body, []byte("\n")) {
					t.Errorf("ndjson body does not end with a newline")
				}
				return bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
			},
		},
		{
			name:        "json_array",
			cfg:         HTTPConfig{Format: FormatJSONArray},
			contentType: "application/json",
			events: func(t *testing.T, body []byte) [][]byte {
				var a []json.RawMessage
				if err := json.Unmarshal(body, &a); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				var out [][]byte
				for _, e := range a {
					out = append(out, e)
				}
				return out
			},
		},
		{
			name: "splunk hec",
			cfg: HTTPConfig{
				Format:   FormatTemplate,
				Template: TemplateConfig{Line: `{"time":{{time_s}},"sourcetype":"crmgate:audit","event":{{event}}}`, Separator: "\n"},
				Headers:  []HeaderConfig{{Name: "Authorization", SecretPrefix: "Splunk ", Secret: hecToken}},
			},
			contentType: "application/json",
			events: func(t *testing.T, body []byte) [][]byte {
				var out [][]byte
				for _, l := range bytes.Split(body, []byte("\n")) {
					var e struct {
						Time  json.Number     `json:"time"`
						Event json.RawMessage `json:"event"`
					}
					if err := json.Unmarshal(l, &e); err != nil {
						t.Fatalf("line %q: %v", l, err)
					}
					if e.Time != "1767366245.123" {
						t.Errorf("time = %s, want 1767366245.123", e.Time)
					}
					out = append(out, e.Event)
				}
				return out
			},
		},
		{
			name: "elastic bulk",
			cfg: HTTPConfig{
				Format:      FormatTemplate,
				Template:    TemplateConfig{Line: "{\"create\":{\"_id\":{{uid_string}}}}\n{{event}}", Separator: "\n", Suffix: "\n"},
				ContentType: "application/x-ndjson",
				Headers:     []HeaderConfig{{Name: "Authorization", SecretPrefix: "ApiKey ", Secret: hecToken}},
			},
			contentType: "application/x-ndjson",
			events: func(t *testing.T, body []byte) [][]byte {
				if !bytes.HasSuffix(body, []byte("\n")) {
					t.Errorf("bulk body does not end with a newline")
				}
				lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
				if len(lines)%2 != 0 {
					t.Fatalf("%d bulk lines, want pairs: %q", len(lines), body)
				}
				var out [][]byte
				for i := 0; i < len(lines); i += 2 {
					var action struct {
						Create struct {
							ID string `json:"_id"`
						} `json:"create"`
					}
					if err := json.Unmarshal(lines[i], &action); err != nil || action.Create.ID == "" {
						t.Errorf("action line %q: %v", lines[i], err)
					}
					if want := fmt.Sprintf(`"uid":%q`, action.Create.ID); !bytes.Contains(lines[i+1], []byte(want)) {
						t.Errorf("_id %q is not the event's uid: %q", action.Create.ID, lines[i+1])
					}
					out = append(out, lines[i+1])
				}
				return out
			},
		},
		{
			name: "loki push",
			cfg: HTTPConfig{
				Format: FormatTemplate,
				Template: TemplateConfig{
					Prefix:    `{"streams":[{"stream":{"app":"crmgate","kind":"audit"},"values":[`,
					Line:      `["{{time_ns}}",{{event_string}}]`,
					Separator: ",",
					Suffix:    `]}]}`,
				},
				Headers: []HeaderConfig{{Name: "X-Scope-OrgID", Value: "tenant-1"}},
			},
			contentType: "application/json",
			events: func(t *testing.T, body []byte) [][]byte {
				var push struct {
					Streams []struct {
						Stream map[string]string `json:"stream"`
						Values [][2]string       `json:"values"`
					} `json:"streams"`
				}
				if err := json.Unmarshal(body, &push); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if len(push.Streams) != 1 || push.Streams[0].Stream["app"] != "crmgate" {
					t.Fatalf("streams = %+v", push.Streams)
				}
				var out [][]byte
				for _, v := range push.Streams[0].Values {
					if v[0] != "1767366245123000000" {
						t.Errorf("timestamp %q, want 1767366245123000000", v[0])
					}
					out = append(out, []byte(v[1]))
				}
				return out
			},
		},
	}
	for _, tt := range tests {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s gzip=%v", tt.name, gz), func(t *testing.T) {
				c := startCollector(t, pki, false)
				cfg := tt.cfg
				cfg.URL, cfg.TLS, cfg.Gzip = c.srv.URL+"/ingest", pki.clientTLS(false), gz
				s := newTestHTTP(t, cfg)
				batch := hostileEvents()
				if err := s.Write(context.Background(), batch); err != nil {
					t.Fatalf("Write() = %v", err)
				}
				reqs := c.requests()
				if len(reqs) != 1 {
					t.Fatalf("%d POSTs, want 1", len(reqs))
				}
				r := reqs[0]
				if got := r.header.Get("Content-Type"); got != tt.contentType {
					t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
				}
				if got := r.header.Get("Content-Encoding"); (got == "gzip") != gz {
					t.Errorf("Content-Encoding = %q with gzip %v", got, gz)
				}
				for _, h := range cfg.Headers {
					want := h.Value
					if !h.Secret.IsZero() {
						want = h.SecretPrefix + string(h.Secret.Value())
					}
					if got := r.header.Get(h.Name); got != want {
						t.Errorf("%s = %q, want %q", h.Name, got, want)
					}
				}
				got := tt.events(t, r.body)
				if len(got) != len(batch) {
					t.Fatalf("%d events in the body, want %d:\n%s", len(got), len(batch), r.body)
				}
				for i := range batch {
					if !sameJSON(t, got[i], batch[i]) {
						t.Errorf("event %d = %s, want %s", i, got[i], batch[i])
					}
				}
			})
		}
	}
}

// Regression: placeholder syntax inside an event is data, never expanded.
func TestHTTPTemplateInjection(t *testing.T) {
	pki := newTestPKI(t)
	c := startCollector(t, pki, false)
	s := newTestHTTP(t, HTTPConfig{
		URL: c.srv.URL, TLS: pki.clientTLS(false), Format: FormatTemplate,
		Template: TemplateConfig{Line: `{"e":{{event}},"s":{{event_string}}}`, Separator: "\n"},
	})
	ev := []byte(`{"a":"{{event}}","b":"{{event_string}}","c":"{{time_ns}}","d":"{{uid_string}}"}`)
	if err := s.Write(context.Background(), [][]byte{ev}); err != nil {
		t.Fatal(err)
	}
	want := `{"e":` + string(ev) + `,"s":` + string(appendJSONString(nil, ev)) + `}`
	if got := string(c.requests()[0].body); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
}

func TestHTTPBatchSplitting(t *testing.T) {
	pki := newTestPKI(t)
	c := startCollector(t, pki, false)
	s := newTestHTTP(t, HTTPConfig{URL: c.srv.URL, TLS: pki.clientTLS(false), Format: FormatJSONArray, MaxBatchBytes: 4096})
	var batch [][]byte
	for i := range 40 {
		batch = append(batch, event(fmt.Sprint("u", i), 1, "t", strings.Repeat("x", 100+i*10)))
	}
	// One event that fits only alone.
	batch = append(batch, event("alone", 1, "t", strings.Repeat("y", 3900)))
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	var got [][]byte
	reqs := c.requests()
	for i, r := range reqs {
		if len(r.body) > 4096 {
			t.Errorf("POST %d is %d bytes, max_batch_bytes is 4096", i, len(r.body))
		}
		var a []json.RawMessage
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		for _, e := range a {
			got = append(got, e)
		}
	}
	if len(reqs) < 3 {
		t.Errorf("%d POSTs, want the batch split", len(reqs))
	}
	if len(got) != len(batch) {
		t.Fatalf("%d events arrived, want %d", len(got), len(batch))
	}
	for i := range batch {
		if !bytes.Equal(got[i], batch[i]) {
			t.Errorf("event %d out of order or changed", i)
		}
	}

	// An event bigger than the limit alone: nothing is sent.
	n := len(c.requests())
	tooBig := event("big", 1, "t", strings.Repeat("z", 5000))
	err := s.Write(context.Background(), [][]byte{batch[0], tooBig})
	var ee *EventError
	if !errors.As(err, &ee) || ee.Index != 1 || !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("Write(too big) = %v, want EventError at 1 wrapping ErrEventTooLarge", err)
	}
	if len(c.requests()) != n {
		t.Error("a batch with an event too large was partly sent")
	}
	err = s.Write(context.Background(), [][]byte{[]byte(`{"a":1}, {"b":2}`)})
	if !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("Write(not one object) = %v, want ErrInvalidEvent", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name       string
		answer     func(w http.ResponseWriter)
		status     int
		retryAfter time.Duration
		config     bool
	}{
		{"500", func(w http.ResponseWriter) { http.Error(w, "boom\n\x1b[31m", 500) }, 500, 0, false},
		{"503 with Retry-After", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
		}, 503, 7 * time.Second, false},
		{"429 with Retry-After", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, 429, 2 * time.Minute, false},
		{"429 with HTTP-date", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "Fri, 02 Jan 2026 15:05:05 GMT")
			w.WriteHeader(429)
		}, 429, time.Minute, false},
		{"429 with garbage", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "soon")
			w.WriteHeader(429)
		}, 429, 0, false},
		{"400", func(w http.ResponseWriter) { http.Error(w, `{"text":"Invalid data format","code":6}`, 400) }, 400, 0, true},
		{"403", func(w http.ResponseWriter) { w.WriteHeader(403) }, 403, 0, true},
		{"413", func(w http.ResponseWriter) { w.WriteHeader(413) }, 413, 0, true},
		{"redirect not followed", func(w http.ResponseWriter) {
			w.Header().Set("Location", "https://elsewhere.example/")
			w.WriteHeader(307)
		}, 307, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCollector(t, pki, false)
			c.answer = func(_ int, w http.ResponseWriter) { tt.answer(w) }
			s := newTestHTTP(t, HTTPConfig{URL: c.srv.URL, TLS: pki.clientTLS(false)})
			s.now = func() time.Time { return time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC) }
			err := s.Write(context.Background(), [][]byte{event("a", 1, "t", "")})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Write() = %v, want a *StatusError", err)
			}
			var ra RetryAfterError
			if !errors.As(err, &ra) || ra.RetryAfter() != tt.retryAfter {
				t.Errorf("RetryAfter() = %v, want %v", ra, tt.retryAfter)
			}
			if se.StatusCode != tt.status || se.Config() != tt.config {
				t.Errorf("status %d config %v, want %d %v", se.StatusCode, se.Config(), tt.status, tt.config)
			}
			if strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("error %q holds control characters from the response", err)
			}
		})
	}
}

// A failure part way through a split batch stops there, in order.
func TestHTTPFailureMidBatch(t *testing.T) {
	pki := newTestPKI(t)
	c := startCollector(t, pki, false)
	c.answer = func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(502)
		}
	}
	s := newTestHTTP(t, HTTPConfig{URL: c.srv.URL, TLS: pki.clientTLS(false), MaxBatchBytes: 4096})
	var batch [][]byte
	for i := range 30 {
		batch = append(batch, event(fmt.Sprint("u", i), 1, "t", strings.Repeat("x", 400)))
	}
	if err := s.Write(context.Background(), batch); err == nil {
		t.Fatal("Write() = nil, want the 502 of the second POST")
	}
	if n := len(c.requests()); n != 2 {
		t.Errorf("%d POSTs, want 2 (stop at the first failure)", n)
	}
}

func TestHTTPNetworkErrorsHideTheQuery(t *testing.T) {
	pki := newTestPKI(t)
	c := startCollector(t, pki, false)
	url := c.srv.URL + "/push?token=SECRET-IN-QUERY"
	c.srv.Close()
	s := newTestHTTP(t, HTTPConfig{URL: url, TLS: pki.clientTLS(false), Timeout: time.Second})
	err := s.Write(context.Background(), [][]byte{event("a", 1, "t", "")})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Write() to a closed collector = %v, want an error without the query", err)
	}
	s.Close()
	if err := s.Write(context.Background(), [][]byte{event("a", 1, "t", "")}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write() after Close = %v, want ErrClosed", err)
	}
}

func TestHTTPMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := startCollector(t, pki, true)
	ok := newTestHTTP(t, HTTPConfig{URL: c.srv.URL, TLS: pki.clientTLS(true)})
	if err := ok.Write(context.Background(), [][]byte{event("a", 1, "t", "")}); err != nil {
		t.Errorf("Write() with a client certificate = %v", err)
	}
	no := newTestHTTP(t, HTTPConfig{URL: c.srv.URL, TLS: pki.clientTLS(false)})
	if err := no.Write(context.Background(), [][]byte{event("b", 1, "t", "")}); err == nil {
		t.Error("Write() without a client certificate = nil, want a TLS error")
	}
	untrusted := newTestHTTP(t, HTTPConfig{URL: c.srv.URL})
	if err := untrusted.Write(context.Background(), [][]byte{event("c", 1, "t", "")}); err == nil {
		t.Error("Write() to a collector outside the system roots = nil, want a verification error")
	}
	if n := len(c.requests()); n != 1 {
		t.Errorf("%d requests reached the collector, want 1", n)
	}
}
