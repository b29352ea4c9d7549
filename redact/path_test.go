package redact

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	name := func(s string) step { return step{kind: selName, name: s} }
	desc := func(st step) step { st.desc = true; return st }
	index := func(i int) step { return step{kind: selIndex, index: i} }
	wild := step{kind: selWild}
	tests := []struct {
		path string
		want []step
	}{
		{"$", nil},
		{"$.a", []step{name("a")}},
		{"$.a.b_c.D9", []step{name("a"), name("b_c"), name("D9")}},
		{"$._x", []step{name("_x")}},
		{"$.größe", []step{name("größe")}},
		{"$.*", []step{wild}},
		{"$[*]", []step{wild}},
		{"$.items[*].ssn", []step{name("items"), wild, name("ssn")}},
		{"$.items[0]", []step{name("items"), index(0)}},
		{"$[10][999999999]", []step{index(10), index(999999999)}},
		{"$..name", []step{desc(name("name"))}},
		{"$..*", []step{desc(wild)}},
		{"$..[*]", []step{desc(wild)}},
		{"$..[3]", []step{desc(index(3))}},
		{"$..['a b']", []step{desc(name("a b"))}},
		{"$.a..b.c", []step{name("a"), desc(name("b")), name("c")}},
		{"$['a b']", []step{name("a b")}},
		{`$["a b"]`, []step{name("a b")}},
		{`$['']`, []step{name("")}},
		{`$['a.b[0]*']`, []step{name("a.b[0]*")}},
		{`$['it\'s']`, []step{name("it's")}},
		{`$["say \"hi\""]`, []step{name(`say "hi"`)}},
		{`$['"']`, []step{name(`"`)}},
		{`$["'"]`, []step{name(`'`)}},
		{`$['\\\/\b\f\n\r\t']`, []step{name("\\/\b\f\n\r\t")}},
		{`$['\u0073sn']`, []step{name("ssn")}},
		{`$['\uD83D\uDE00']`, []step{name("😀")}},
		{`$[ 'a' ]`, []step{name("a")}},
		{"$[\t0\n]", []step{index(0)}},
	}
	for _, tt := range tests {
		got, err := parsePath(tt.path)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parsePath(%q) = %+v, %v, want %+v", tt.path, got, err, tt.want)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	tests := []struct {
		path string
		pos  int
		msg  string
	}{
		{"", 0, "starts with $"},
		{"a", 0, "starts with $"},
		{"$a", 1, "expected . or ["},
		{"$.", 2, "member name"},
		{"$..", 3, "member name"},
		{"$...a", 3, "member name"},
		{"$.1a", 2, "cannot start with a digit"},
		{"$.a-b", 3, "expected . or ["},
		{"$.a b", 3, "expected . or ["},
		{"$[", 2, "unterminated"},
		{"$[0", 3, "unterminated"},
		{"$[]", 2, "expected a quoted name"},
		{"$[-1]", 2, "negative indices"},
		{"$[01]", 2, "leading zeros"},
		{"$[1000000000]", 2, "index larger"},
		{"$[1:2]", 3, "slices"},
		{"$[:2]", 2, "slices"},
		{"$[0,1]", 3, "unions"},
		{"$['a','b']", 5, "unions"},
		{"$[?@.a]", 2, "filter expressions"},
		{"$[a]", 2, "expected a quoted name"},
		{"$['a]", 2, "unterminated quoted name"},
		{`$['a\']`, 2, "unterminated quoted name"},
		{`$['\x']`, 3, "unknown escape"},
		{`$['\"']`, 3, "only an escape inside"},
		{`$['\u12']`, 3, "four hex digits"},
		{`$['\uDE00']`, 3, "lone low surrogate"},
		{`$['\uD83D']`, 3, "high surrogate"},
		{"$['a\nb']", 4, "control character"},
		{"$['a'", 5, "unterminated"},
		{"$['a' x]", 6, "expected ]"},
		{"$.a\xff", 0, "UTF-8"},
		{"$" + strings.Repeat(".a", 65), 129, "more than 64 segments"},
		{"$." + strings.Repeat("a", 1100), 1024, "longer than"},
	}
	for _, tt := range tests {
		_, err := parsePath(tt.path)
		var pe *PathError
		if !errors.As(err, &pe) || pe.Pos != tt.pos || !strings.Contains(pe.Msg, tt.msg) || pe.Path != tt.path {
			t.Errorf("parsePath(%q) error %v, want at %d %q", tt.path, err, tt.pos, tt.msg)
		}
	}
}

// formatPath writes steps in the bracket form, which parsePath reads back.
func formatPath(steps []step) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, st := range steps {
		if st.desc {
			b.WriteString("..")
		}
		switch st.kind {
		case selWild:
			b.WriteString("[*]")
		case selIndex:
			fmt.Fprintf(&b, "[%d]", st.index)
		default:
			b.WriteString("['")
			for _, r := range st.name {
				switch {
				case r == '\'' || r == '\\':
					b.WriteString(`\` + string(r))
				case r < 0x20:
					fmt.Fprintf(&b, `\u%04x`, r)
				default:
					b.WriteRune(r)
				}
			}
			b.WriteString("']")
		}
	}
	return b.String()
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$.items[*].x", "$..name", "$.items[0]", "$['a b']", `$["x\"y"]`, `$['\u00e9\uD83D\uDE00']`, "$..[*]", "$[?@]", "$[-1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := parsePath(s)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(s) {
				t.Fatalf("parsePath(%q) error %v: no position inside the path", s, err)
			}
			return
		}
		again, err := parsePath(formatPath(steps))
		if err != nil || !reflect.DeepEqual(again, steps) {
			t.Fatalf("parsePath(%q) = %+v; formatted %q parses to %+v, %v", s, steps, formatPath(steps), again, err)
		}
		// Every path parsed compiles and runs.
		p, err := Compile([]Rule{{Path: s, Action: ActionNull}}, []Filter{{Path: s, KeepWhere: map[string]any{"a": "b"}}}, Options{})
		if err != nil {
			t.Fatalf("Compile(%q): %v", s, err)
		}
		var out strings.Builder
		p.Transform(&out, strings.NewReader(`{"a":[1,{"b":2}],"a b":{"":[]}}`))
	})
}
