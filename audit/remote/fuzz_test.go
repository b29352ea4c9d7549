package remote

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzTemplate checks the line template compiler on any template, and the
// renderer on any event: a body built with every placeholder stays one
// JSON value whose parts give back the event, whatever the event holds.
// Seeds: testdata/fuzz/FuzzTemplate.
func FuzzTemplate(f *testing.F) {
	f.Add(`{"event":{{event}}}`, []byte(`{"a":"{{event}}"}`))
	f.Add(`["{{time_ns}}",{{event_string}}]`, []byte("{\"m\":\"line\\nbreak \\\"q\\\" é\"}"))
	f.Add(`{{`, []byte(`{}`))
	now := func() time.Time { return time.Unix(1767366245, 0) }
	full, err := compileTemplate(`[{{event}},{{event_string}},{{uid_string}},"{{time_ns}}",{{time_ms}},{{time_s}}]`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tmpl string, ev []byte) {
		lt, err := compileTemplate(tmpl)
		m, evErr := parseEvent(ev)
		if err == nil && !strings.Contains(tmpl, "{{") {
			if got := string(lt.appendLine(nil, ev, m, now)); got != tmpl {
				t.Fatalf("template without placeholders rendered %q, want %q", got, tmpl)
			}
		}
		if evErr != nil {
			return
		}
		if err == nil {
			lt.appendLine(nil, oneLine(ev), m, now)
		}
		one := oneLine(ev)
		if bytes.ContainsAny(one, "\r\n") {
			t.Fatalf("oneLine(%q) = %q holds a line break", ev, one)
		}
		out := full.appendLine(nil, one, m, now)
		var parts []json.RawMessage
		if err := json.Unmarshal(out, &parts); err != nil || len(parts) != 6 {
			t.Fatalf("rendered %q: %v, %d parts", out, err, len(parts))
		}
		var s string
		if err := json.Unmarshal(parts[1], &s); err != nil {
			t.Fatalf("event_string %q: %v", parts[1], err)
		}
		if utf8.Valid(one) && s != string(one) {
			t.Fatalf("event_string decodes to %q, want %q", s, one)
		}
		var a, b any
		if json.Unmarshal(parts[0], &a) != nil || json.Unmarshal([]byte(s), &b) != nil {
			t.Fatalf("event parts do not decode: %q", out)
		}
	})
}

// FuzzSyslogFrame checks that any event the sink accepts becomes exactly
// one RFC 5425 frame holding a well-formed RFC 5424 header and the event
// unchanged, so that no event content can forge a second message.
// Seeds: testdata/fuzz/FuzzSyslogFrame.
func FuzzSyslogFrame(f *testing.F) {
	f.Add([]byte(`{"severity_id":4,"unmapped":{"event_type":"auth.login"},"time":1767366245123}`), false)
	f.Add([]byte("{\"m\":\"12 <13>1 - - - - - - forged\\n\"}"), true)
	s := &Syslog{facility: 16, header: []byte(" gw crmgate 42 "), bom: true, maxMsg: 1 << 20, now: func() time.Time { return time.Unix(0, 0) }}
	f.Fuzz(func(t *testing.T, ev []byte, omitBOM bool) {
		s.bom = !omitBOM
		frame, err := s.appendFrame([]byte("3 abc"), ev)
		if err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(frame))
		if first, err := readFrame(br); err != nil || string(first) != "abc" {
			t.Fatalf("the frame before was changed: %q, %v", first, err)
		}
		msg, err := readFrame(br)
		if err != nil {
			t.Fatalf("readFrame(%q): %v", frame, err)
		}
		if br.Buffered() != 0 {
			t.Fatalf("%d bytes after the frame", br.Buffered())
		}
		m, err := parseSyslog(msg)
		if err != nil {
			t.Fatalf("parseSyslog(%q): %v", msg, err)
		}
		wantBOM := !omitBOM && utf8.Valid(ev)
		if m.Msg != string(ev) || m.BOM != wantBOM || m.SD != "-" || m.Version != "1" {
			t.Fatalf("parsed %+v from event %q", m, ev)
		}
	})
}
