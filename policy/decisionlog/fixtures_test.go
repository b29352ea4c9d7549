package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testTime is the fixed time of test decisions.
var testTime = time.Date(2026, 1, 2, 15, 4, 5, 123456789, time.UTC)

// testInput is a realistic input with every field set, sensitive ones
// included.
func testInput() *policy.Input {
	return &policy.Input{
		Request: policy.RequestInput{
			ID:       "0193f1c2-7c1e-7000-8000-000000000042",
			Method:   "GET",
			Path:     "/api/contacts/42",
			Query:    map[string][]string{"q": {"Jane Roe"}, "token": {"s3cr3t-reset-token"}},
			Host:     "crm.example.com",
			ClientIP: "203.0.113.7",
			Time:     time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
			Headers: map[string]string{
				"accept":     "application/json",
				"referer":    "https://crm.example.com/search?q=Jane+Roe",
				"user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
			},
		},
		Route: policy.RouteInput{ID: "contacts.item", Params: map[string]string{"id": "42"}, Tags: []string{"pii"}},
		Subject: policy.SubjectInput{
			Kind: "api_key", ID: "k_7f3a", Email: "alice@example.com",
			Roles: []string{"sales"}, Groups: []string{}, ACR: "mfa", AMR: []string{"pwd", "otp"},
			AuthTime: 1767366245,
			APIKey:   &policy.APIKeyInput{ID: "k_7f3a", Name: "nightly export", Owner: "alice@example.com", Scopes: []string{"contacts:read"}, Tier: "standard"},
			Claims:   map[string]any{"name": "Alice Example", "phone_number": "+44 20 7946 0000", "nested": map[string]any{"list": []any{"a", "b"}}},
		},
		Session: &policy.SessionInput{AgeS: 120, IdleS: 3, Fingerprint: policy.FingerprintInput{Bound: true, Match: true, Changed: []string{}}},
	}
}

// testDecision is an allow as the shipped policy gives it, with what the
// engine adds.
func testDecision() policy.Decision {
	return policy.Decision{
		Allow:     true,
		Reason:    "sales may GET contacts.item",
		Redact:    []policy.Redaction{{Path: "$..ssn", Action: "remove"}, {Path: "$..credit_card", Action: "mask", KeepLast: 4}},
		RateLimit: &policy.RateLimit{Tier: "standard"},
		Audit:     &policy.Audit{Durability: "async", Tags: []string{"pii"}},

		Revision:   "4f2c0e9ab1d35c7e8f6a0b2d4c6e8f10",
		Entrypoint: "data.crmgate.authz.decision",
		Elapsed:    41 * time.Microsecond,
	}
}

// failedDecision is a deny the engine made because the policy timed out.
func failedDecision() policy.Decision {
	return policy.Decision{
		Reason:     policy.ReasonTimeout,
		Error:      "evaluation exceeded 50ms",
		Revision:   "4f2c0e9ab1d35c7e8f6a0b2d4c6e8f10",
		Entrypoint: "data.crmgate.authz.decision",
		Elapsed:    50 * time.Millisecond,
	}
}

// testConfig is cfg with defaults applied, checked.
func testConfig(t testing.TB, cfg Config) Config {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return cfg
}

// newTestLogger is a logger for cfg writing to out (nil: no output, as
// off), with a fixed clock and sequential decision ids.
func newTestLogger(t testing.TB, cfg Config, out io.Writer, o Options) *Logger {
	t.Helper()
	cfg = testConfig(t, cfg)
	queue := cfg.Queue
	cfg.Output = OutputOff
	if o.Now == nil {
		o.Now = func() time.Time { return testTime }
	}
	if o.InstanceID == "" {
		o.InstanceID = "6f1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
	}
	if o.Version == "" {
		o.Version = "v1.4.0"
	}
	l, err := New(cfg, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	var mu sync.Mutex
	n := 0
	l.newID = func(dst []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Appendf(dst, `"00000000-0000-4000-8000-%012d"`, n)
	}
	if out != nil {
		l.out = out
		l.w = bufio.NewWriterSize(out, bufferSize)
		l.queue = make(chan *line, queue)
	}
	return l
}

// encode is the event line of e.
func encode(l *Logger, e Entry) []byte { return l.appendEvent(nil, &e) }

// decodeEvent decodes one event line strictly, failing the test if it is
// not exactly one JSON object on one line.
func decodeEvent(t testing.TB, line []byte) map[string]any {
	t.Helper()
	if bytes.Count(line, []byte{'\n'}) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("event is not one line: %q", truncate(line))
	}
	if !json.Valid(line) {
		t.Fatalf("event is not valid JSON: %q", truncate(line))
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.SplitAfter(strings.TrimSuffix(s.b.String(), "\n"), "\n")
}

// Count is the number of lines written.
func (s *syncBuffer) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.b.Bytes(), []byte{'\n'})
}

// count is the value of crmgate_policy_decision_log_events_total{result}.
func count(t testing.TB, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "crmgate_policy_decision_log_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("crmgate_policy_decision_log_events_total{result=%q} not found", result)
	return 0
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(got), string(want)); d != "" {
		t.Errorf("%s (-got +want):\n%s", path, d)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
