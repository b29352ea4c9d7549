package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestHostileKeysAreRedacted(t *testing.T) {
	rules := []Rule{{Path: "$..ssn", Action: "remove"}, {Path: "$..cc", Action: "mask"}}
	tests := []struct {
		name, in, want string
	}{
		// Every occurrence is redacted: a client keeps one of them.
		{"duplicate removed", `{"ssn":"1","a":0,"ssn":"2"}`, `{"a":0}`},
		{"duplicate masked", `{"cc":"1","cc":{"x":"2"}}`, `{"cc":"****","cc":"****"}`},
		// Names are compared decoded.
		{"escaped letter", `{"s\u0073n":"1"}`, `{}`},
		{"every letter escaped", `{"\u0073\u0073\u006e":"1","a":2}`, `{"a":2}`},
		{"upper-case hex", `{"\u0073S\u004E":"1","\u0073\u0073\u006E":"2"}`, `{"\u0073S\u004E":"1"}`},
		{"escaped in a row", `{"items":[{"c\u0063":"4111"}]}`, `{"items":[{"c\u0063":"****"}]}`},
		{"escaped solidus is not a letter", `{"ss\/n":"1"}`, `{"ss\/n":"1"}`},
		{"name with a NUL is another name", `{"ssn\u0000":"1"}`, `{"ssn\u0000":"1"}`},
		{"lone surrogate is another name", `{"ssn\ud800":"1"}`, `{"ssn\ud800":"1"}`},
		{"whitespace everywhere", " {\n\t\"ssn\"\r\n:\t\"1\" ,\"cc\" : [ 1 , 2 ] } ", `{"cc":"****"}`},
		{"deep descendant", strings.Repeat(`{"a":`, 60) + `{"ssn":"1"}` + strings.Repeat(`}`, 60), strings.Repeat(`{"a":`, 60) + `{}` + strings.Repeat(`}`, 60)},
		{"huge number redacted", `{"cc":1e999,"n":1e999}`, `{"cc":"****","n":1e999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, rules, nil)
			got, _, err := transformAll(t, p, tt.in)
			if err != nil || got != tt.want {
				t.Errorf("Transform(%s) = %s, %v, want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestHostileBodiesAreRefused(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrMalformed},
		{"only whitespace", " \n\t ", ErrMalformed},
		{"only a byte order mark", "\uFEFF", ErrMalformed},
		{"two byte order marks", "\uFEFF\uFEFF{}", ErrMalformed},
		{"byte order mark after whitespace", " \uFEFF{}", ErrMalformed},
		{"cut byte order mark", "\xEF\xBB{}", ErrMalformed},
		{"UTF-16 byte order mark", "\xFE\xFF\x00{\x00}", ErrMalformed},
		{"trailing comma in object", `{"a":1,}`, ErrMalformed},
		{"trailing comma in array", `[1,]`, ErrMalformed},
		{"leading comma", `[,1]`, ErrMalformed},
		{"missing colon", `{"a" 1}`, ErrMalformed},
		{"missing comma", `{"a":1 "b":2}`, ErrMalformed},
		{"missing value", `{"a":}`, ErrMalformed},
		{"unquoted name", `{a:1}`, ErrMalformed},
		{"single quotes", `{'a':1}`, ErrMalformed},
		{"name not a string", `{1:1}`, ErrMalformed},
		{"mismatched close", `{"a":[1}`, ErrMalformed},
		{"extra close", `{"a":1}}`, ErrMalformed},
		{"close without open", `]`, ErrMalformed},
		{"leading zero", `[01]`, ErrMalformed},
		{"bare dot", `[1.]`, ErrMalformed},
		{"leading dot", `[.5]`, ErrMalformed},
		{"bare minus", `[-]`, ErrMalformed},
		{"plus sign", `[+1]`, ErrMalformed},
		{"empty exponent", `[1e]`, ErrMalformed},
		{"exponent sign only", `[1e+]`, ErrMalformed},
		{"hex number", `[0x10]`, ErrMalformed},
		{"NaN", `[NaN]`, ErrMalformed},
		{"Infinity", `[Infinity]`, ErrMalformed},
		{"cut literal", `[tru]`, ErrMalformed},
		{"literal with suffix", `[truex]`, ErrMalformed},
		{"capital literal", `[True]`, ErrMalformed},
		{"number with suffix", `[1x]`, ErrMalformed},
		{"two strings", `["a""b"]`, ErrMalformed},
		{"unterminated string", `["abc`, ErrMalformed},
		{"bad escape", `["\x41"]`, ErrMalformed},
		{"short unicode escape", `["\u12"]`, ErrMalformed},
		{"bad unicode escape", `["\u12G4"]`, ErrMalformed},
		{"raw newline in a string", "[\"a\nb\"]", ErrMalformed},
		{"raw tab in a string", "[\"a\tb\"]", ErrMalformed},
		{"raw NUL in a string", "[\"a\x00b\"]", ErrMalformed},
		{"raw NUL outside", "[1,\x002]", ErrMalformed},
		{"vertical tab as space", "[1,\v2]", ErrMalformed},
		{"no-break space as space", "[1,\u00a02]", ErrMalformed},
		{"comment", `/* x */ {}`, ErrMalformed},
		{"line comment", "{} // x", ErrMalformed},
		{"trailing garbage", `{"a":1}x`, ErrMalformed},
		{"second document", `{"a":1} {"b":2}`, ErrMalformed},
		{"second document without space", `{}{}`, ErrMalformed},
		{"trailing NUL", "{}\x00", ErrMalformed},
		{"trailing comma after document", `{},`, ErrMalformed},
		{"invalid UTF-8 byte", "[\"a\xffb\"]", ErrMalformed},
		{"invalid UTF-8 in a name", "{\"ss\xffn\":1}", ErrMalformed},
		{"invalid UTF-8 in a removed value", "{\"ssn\":\"\xff\"}", ErrMalformed},
		{"invalid UTF-8 in a masked value", "{\"cc\":\"\xc3\"}", ErrMalformed},
		{"overlong encoding", "[\"\xc0\xaf\"]", ErrMalformed},
		{"overlong NUL", "[\"\xc0\x80\"]", ErrMalformed},
		{"surrogate in UTF-8", "[\"\xed\xa0\x80\"]", ErrMalformed},
		{"above U+10FFFF", "[\"\xf4\x90\x80\x80\"]", ErrMalformed},
		{"cut sequence before quote", "[\"\xe2\x82\"]", ErrMalformed},
		{"cut sequence at end", "[\"\xe2\x82", ErrMalformed},
		{"continuation byte alone", "[\"\x80\"]", ErrMalformed},
		{"Latin-1 body", "{\"name\":\"M\xfcller\"}", ErrMalformed},
		{"malformed inside a removed value", `{"ssn":[1,}`, ErrMalformed},
		{"malformed inside a masked value", `{"cc":{"a" 1}}`, ErrMalformed},
		{"malformed inside a dropped row", `{"items":[{"owner":"bob","x":[1 2]}]}`, ErrMalformed},
		{"too deep", strings.Repeat("[", 65) + strings.Repeat("]", 65), ErrLimit},
		{"far too deep", strings.Repeat(`{"a":[`, 100_000), ErrLimit},
		{"too deep inside a removed value", `{"ssn":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, ErrLimit},
	}
	p := mustCompile(t, []Rule{{Path: "$..ssn", Action: "remove"}, {Path: "$..cc", Action: "mask", KeepLast: 2}}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := transformAll(t, p, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Transform(%q) = %q, %v, want %v", tt.in, got, err, tt.want)
			}
			if got != "" {
				t.Errorf("Transform(%q) wrote %q before refusing", tt.in, got)
			}
		})
	}
	// The same bodies in a filtered array refuse the same way.
	fp := mustCompile(t, nil, []Filter{{Path: "$[*]", KeepWhere: map[string]any{"owner": "alice"}}})
	for _, tt := range tests[:10] {
		if _, _, err := transformAll(t, fp, tt.in); err == nil {
			t.Errorf("filtered Transform(%q) succeeded", tt.in)
		}
	}
}

func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name  string
		rules []Rule
		in    string
		limit string
	}{
		{"string", nil, `{"a":"` + big + `"}`, "MaxTokenBytes"},
		{"escaped string", nil, `{"a":"` + strings.Repeat(`\u0041`, 400) + `"}`, "MaxTokenBytes"},
		{"member name", nil, `{"` + big + `":1}`, "MaxTokenBytes"},
		{"number", nil, `[` + strings.Repeat("1", 2000) + `]`, "MaxTokenBytes"},
		{"masked string", []Rule{{Path: "$.a", Action: "mask", KeepLast: 2}}, `{"a":"` + big + `"}`, "MaxTokenBytes"},
		{"removed string", []Rule{{Path: "$.a", Action: "remove"}}, `{"a":"` + big + `"}`, "MaxTokenBytes"},
		{"hashed object", []Rule{{Path: "$.a", Action: "hash"}}, `{"a":[` + strings.Repeat(`"abc",`, 300) + `1]}`, "MaxTokenBytes"},
		{"hashed object with blanks", []Rule{{Path: "$.a", Action: "hash"}}, `{"a":[1` + strings.Repeat(" ", 2000) + `]}`, "MaxTokenBytes"},
		{"depth", nil, strings.Repeat("[", 9) + strings.Repeat("]", 9), "MaxDepth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.rules, nil, Options{HashKey: testKey, MaxTokenBytes: 1024, MaxDepth: 8})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = transformAll(t, p, tt.in)
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != tt.limit || !errors.Is(err, ErrLimit) {
				t.Errorf("Transform error %v, want %s exceeded", err, tt.limit)
			}
		})
	}
	// A limit is exceeded at one byte of the body, whatever comes later
	// and however the writes cut it (transformAll tries several ways).
	small, err := Compile(nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}},
		Options{MaxTokenBytes: 1024, MaxHeldBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, in string
		want     error
	}{
		{"string, then a control character", `{"items":[],"a":"` + big + "\x01\"}", ErrLimit},
		{"control character, then the limit", `{"items":[],"a":"xx` + "\x01" + big + `"}`, ErrMalformed},
		{"number, then a letter", `{"items":[],"a":` + strings.Repeat("1", 2000) + `x}`, ErrLimit},
		{"row, then a syntax error", `{"items":[{"n":"` + strings.Repeat("y", 1000) + `","m":"` + strings.Repeat("y", 1000) + `",}]}`, ErrLimit},
		{"syntax error inside a row under the limit", `{"items":[{"n":"y",}]}`, ErrMalformed},
		{"no target, then a syntax error", `{"x":"` + strings.Repeat("y", 1000) + `","z":"` + strings.Repeat("y", 1000) + `",}`, ErrLimit},
	} {
		if _, _, err := transformAll(t, small, tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}

	// At the limits, bodies pass.
	p, err := Compile(nil, nil, Options{MaxTokenBytes: 1024, MaxDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	in := `[[[[[[[["` + strings.Repeat("x", 1022) + `"]]]]]]]]`
	if got, _, err := transformAll(t, p, in); err != nil || got != in {
		t.Errorf("Transform at the limits: %v", err)
	}
}

// Errors say where the body went wrong, counting every byte of it.
func TestSyntaxErrorOffset(t *testing.T) {
	p := mustCompile(t, nil, nil)
	_, _, err := transformAll(t, p, `{"a":[1,2,x]}`)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != 10 {
		t.Errorf("error %v, want a *SyntaxError at offset 10", err)
	}
	if _, err := p.Transform(nil, strings.NewReader("\uFEFF[1,]")); !errors.As(err, &se) || se.Offset != 6 {
		t.Errorf("error %v, want offset 6 counting the byte order mark", err)
	}
	var v any
	if json.Unmarshal([]byte(`{"a":[1,2,x]}`), &v) == nil {
		t.Fatal("encoding/json accepts the sample")
	}
}
