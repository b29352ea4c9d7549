package remote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/crmgate/crmgate/internal/jsonstr"
	"strconv"
	"strings"
	"time"
)

// The placeholders of a line template. Each expands to a complete JSON
// value or to digits, so that no event content can end a string or an
// object early:
//
//	{{event}}         the event as a JSON object, as it is (line breaks removed)
//	{{event_string}}  the event as one JSON string literal, quotes included
//	{{uid_string}}    metadata.uid as a JSON string literal; null when absent
//	{{time_ns}}       the event's time in nanoseconds since the Unix epoch (digits)
//	{{time_ms}}       ... in milliseconds (digits)
//	{{time_s}}        ... in seconds with three decimals, e.g. 1767366245.123
//
// The event's time is its OCSF "time" (milliseconds), or the time of the
// Write when it has none. Substitution happens once, over the template only:
// text that looks like a placeholder inside an event is never expanded.
const (
	phLiteral = iota
	phEvent
	phEventString
	phUIDString
	phTimeNS
	phTimeMS
	phTimeS
)

var placeholders = map[string]int{
	"event":        phEvent,
	"event_string": phEventString,
	"uid_string":   phUIDString,
	"time_ns":      phTimeNS,
	"time_ms":      phTimeMS,
	"time_s":       phTimeS,
}

func placeholderNames() string {
	return "{{event}}, {{event_string}}, {{uid_string}}, {{time_ns}}, {{time_ms}}, {{time_s}}"
}

type segment struct {
	kind int
	lit  string // for phLiteral
}

// lineTemplate is a compiled line template.
type lineTemplate struct {
	segs     []segment
	needMeta bool // a placeholder reads uid or time
}

// compileTemplate parses s. Every "{{" must open a known placeholder: JSON
// never holds "{{" outside a string, and a typo must not be sent literally.
func compileTemplate(s string) (lineTemplate, error) {
	var t lineTemplate
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.segs = append(t.segs, segment{lit: s})
			break
		}
		if i > 0 {
			t.segs = append(t.segs, segment{lit: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return lineTemplate{}, fmt.Errorf("%q opens a placeholder that does not close with }}", s[i:])
		}
		name := s[i+2 : i+2+j]
		kind, ok := placeholders[name]
		if !ok {
			return lineTemplate{}, fmt.Errorf("{{%s}} is not a placeholder (%s)", name, placeholderNames())
		}
		t.segs = append(t.segs, segment{kind: kind})
		if kind != phEvent && kind != phEventString {
			t.needMeta = true
		}
		s = s[i+2+j+2:]
	}
	return t, nil
}

// hasEvent reports whether the template writes the event at all.
func (t lineTemplate) hasEvent() bool {
	for _, sg := range t.segs {
		if sg.kind == phEvent || sg.kind == phEventString {
			return true
		}
	}
	return false
}

// appendLine renders the template for one event. ev must have passed
// parseEvent and oneLine.
func (t lineTemplate) appendLine(b, ev []byte, m eventMeta, now func() time.Time) []byte {
	var ts time.Time
	if t.needMeta {
		ts = m.eventTime(now)
	}
	for _, sg := range t.segs {
		switch sg.kind {
		case phLiteral:
			b = append(b, sg.lit...)
		case phEvent:
			b = append(b, ev...)
		case phEventString:
			b = appendJSONString(b, ev)
		case phUIDString:
			if m.Metadata.UID == "" {
				b = append(b, "null"...)
			} else {
				b = appendJSONString(b, []byte(m.Metadata.UID))
			}
		case phTimeNS:
			b = strconv.AppendInt(b, ts.UnixNano(), 10)
		case phTimeMS:
			b = strconv.AppendInt(b, ts.UnixMilli(), 10)
		case phTimeS:
			ms := ts.UnixMilli()
			b = strconv.AppendInt(b, ms/1000, 10)
			b = append(b, '.')
			f := ms % 1000
			b = append(b, byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
		}
	}
	return b
}

// bodyShape reports whether body is one JSON text or NDJSON (every
// non-empty line one JSON text): what every collector this sink targets
// takes, and what a template mistake (a missing quote) breaks.
func bodyShape(body []byte) bool {
	if json.Valid(body) {
		return true
	}
	lines := 0
	for _, l := range bytes.Split(body, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if !json.Valid(l) {
			return false
		}
		lines++
	}
	return lines > 0
}

// appendJSONString appends s as a JSON string literal (RFC 8259 §7; see
// jsonstr.Append).
func appendJSONString(b, s []byte) []byte { return jsonstr.Append(b, string(s)) }
