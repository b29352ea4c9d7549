package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditFiles is the part of demo.json that names the demo's audit log.
type auditFiles struct {
	Log       string `json:"audit_log"`
	PublicKey string `json:"audit_public_key"`
}

// auditFiles returns where the demo writes its audit log and the key that
// verifies it.
func (d *demo) auditFiles(t *testing.T) auditFiles {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f auditFiles
	if err := json.Unmarshal(b, &f); err != nil || f.Log == "" || f.PublicKey == "" {
		t.Fatalf("demo.json lacks audit_log or audit_public_key (%v):\n%s", err, b)
	}
	return f
}

// auditEvent is one event line of an audit file (checkpoint lines are not
// events).
type auditEvent struct {
	Line int // 1-based line in the file
	Seq  int64
	Raw  string
	m    map[string]any
}

// get returns the member at a dotted path ("http_request.uid"), nil when
// there is none.
func (e auditEvent) get(path string) any {
	var v any = e.m
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func (e auditEvent) str(path string) string {
	s, _ := e.get(path).(string)
	return s
}

func (e auditEvent) num(path string) int64 {
	f, _ := e.get(path).(float64)
	return int64(f)
}

func (e auditEvent) typ() string { return e.str("unmapped.type") }

// readAudit parses the complete lines of the audit file at path. A last
// line still being written (no newline yet) is left for the next read.
func readAudit(t *testing.T, path string) []auditEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the audit log: %v", err)
	}
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []auditEvent
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit log line %d is not JSON: %v\n%s", n, err, sc.Text())
		}
		if _, ok := m["checkpoint"]; ok {
			continue
		}
		seq, _ := m["seq"].(float64)
		out = append(out, auditEvent{Line: n, Seq: int64(seq), Raw: sc.Text(), m: m})
	}
	return out
}

// filterAudit returns the events for which match holds.
func filterAudit(evs []auditEvent, match func(auditEvent) bool) []auditEvent {
	var out []auditEvent
	for _, e := range evs {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// waitAudit polls the audit file at path until an event for which match
// holds is there (events are written within about 100 ms), for up to 5
// seconds, and returns the matching events.
func waitAudit(t *testing.T, path, what string, match func(auditEvent) bool) []auditEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := filterAudit(readAudit(t, path), match); len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			evs := readAudit(t, path)
			var types []string
			for _, e := range evs[max(0, len(evs)-15):] {
				types = append(types, e.typ())
			}
			t.Fatalf("no audit event %s in %s within 5s (%d events; the last: %v)", what, path, len(evs), types)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ofType matches events of an audit event type.
func ofType(typ string) func(auditEvent) bool {
	return func(e auditEvent) bool { return e.typ() == typ }
}

// requestEvent matches the http.request events of request id rid.
func requestEvent(rid string) func(auditEvent) bool {
	return func(e auditEvent) bool { return e.typ() == "http.request" && e.str("http_request.uid") == rid }
}

// metricValue is the value of the sample name (with its labels, exactly
// as exposed, e.g. `crmgate_audit_events_spooled_total{sink="http-0"}`)
// in Prometheus text; -1 when it is absent.
func metricValue(text, name string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// cookieValue is the value of a "name=value" Cookie header.
func cookieValue(t *testing.T, cookie string) string {
	t.Helper()
	_, v, ok := strings.Cut(cookie, "=")
	if !ok || len(v) < 16 {
		t.Fatalf("not a session cookie: %q", cookie)
	}
	return v
}

// describe is a short account of an event for failure messages.
func (e auditEvent) describe() string {
	raw := e.Raw
	if len(raw) > 800 {
		raw = raw[:800] + "…"
	}
	return fmt.Sprintf("line %d (seq %d): %s", e.Line, e.Seq, raw)
}
