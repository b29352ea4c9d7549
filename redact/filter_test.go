package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFilterRows(t *testing.T) {
	alice := []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}
	tests := []struct {
		name    string
		rules   []Rule
		filters []Filter
		in      string
		want    string
		dropped int
	}{
		{"keeps matching rows", nil, alice,
			`{"items":[{"owner":"alice","id":1},{"owner":"bob","id":2},{"id":3,"owner":"alice"}],"total":3}`,
			`{"items":[{"owner":"alice","id":1},{"id":3,"owner":"alice"}],"total":3}`, 1},
		{"first row dropped leaves no comma", nil, alice,
			`{"items":[{"owner":"bob"},{"owner":"alice"}]}`, `{"items":[{"owner":"alice"}]}`, 1},
		{"last row dropped leaves no comma", nil, alice,
			`{"items":[{"owner":"alice"},{"owner":"bob"}]}`, `{"items":[{"owner":"alice"}]}`, 1},
		{"every row dropped", nil, alice,
			`{"items":[{"owner":"bob"},{"owner":"carol"}]}`, `{"items":[]}`, 2},
		{"empty array", nil, alice, `{"items":[]}`, `{"items":[]}`, 0},
		{"missing field drops", nil, alice, `{"items":[{"id":1},{"owner":"alice"}]}`, `{"items":[{"owner":"alice"}]}`, 1},
		{"rows that are not objects drop", nil, alice,
			`{"items":["alice",["owner","alice"],null,1,{"owner":"alice"}]}`, `{"items":[{"owner":"alice"}]}`, 4},
		{"field decided after nested values", nil, alice,
			`{"items":[{"deals":[{"owner":"alice"}],"owner":"bob"},{"x":{"owner":"bob"},"owner":"alice"}]}`,
			`{"items":[{"x":{"owner":"bob"},"owner":"alice"}]}`, 1},
		{"a nested value never equals", nil, alice,
			`{"items":[{"owner":{"name":"alice"}},{"owner":["alice"]},{"owner":"alice"}]}`, `{"items":[{"owner":"alice"}]}`, 2},
		{"string is not number", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"team": json.Number("42")}}},
			`{"items":[{"team":"42"},{"team":42},{"team":42.0},{"team":4.2e1},{"team":420e-1},{"team":43},{"team":-42}]}`,
			`{"items":[{"team":42},{"team":42.0},{"team":4.2e1},{"team":420e-1}]}`, 3},
		{"number is not string", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"team": "42"}}},
			`{"items":[{"team":"42"},{"team":42}]}`, `{"items":[{"team":"42"}]}`, 1},
		{"numbers compare exactly, not as float64", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"id": json.Number("9007199254740993")}}},
			`{"items":[{"id":9007199254740993},{"id":9007199254740992},{"id":9007199254740993.0}]}`,
			`{"items":[{"id":9007199254740993},{"id":9007199254740993.0}]}`, 1},
		{"Go integers", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"id": 7, "n": int64(-1), "f": 0.5}}},
			`{"items":[{"id":7,"n":-1,"f":5e-1},{"id":7,"n":-1,"f":0.25}]}`, `{"items":[{"id":7,"n":-1,"f":5e-1}]}`, 1},
		{"boolean is not string", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"active": true}}},
			`{"items":[{"active":true},{"active":"true"},{"active":false},{"active":1},{"active":null}]}`,
			`{"items":[{"active":true}]}`, 4},
		{"every field must match", nil, []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice", "region": "eu"}}},
			`{"items":[{"owner":"alice","region":"eu"},{"owner":"alice","region":"us"},{"owner":"alice"},{"region":"eu","owner":"alice"}]}`,
			`{"items":[{"owner":"alice","region":"eu"},{"region":"eu","owner":"alice"}]}`, 2},
		{"every filter on one array must match", nil, []Filter{
			{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}},
			{Path: "$.items", KeepWhere: map[string]any{"region": "eu"}}},
			`{"items":[{"owner":"alice","region":"eu"},{"owner":"alice","region":"us"}]}`,
			`{"items":[{"owner":"alice","region":"eu"}]}`, 1},
		{"two filters that disagree keep nothing", nil, []Filter{
			{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}},
			{Path: "$.items", KeepWhere: map[string]any{"owner": "bob"}}},
			`{"items":[{"owner":"alice"},{"owner":"bob"}]}`, `{"items":[]}`, 2},
		{"escaped field name matches", nil, alice,
			`{"items":[{"own\u0065r":"alice"},{"own\u0065r":"bob"}]}`, `{"items":[{"own\u0065r":"alice"}]}`, 1},
		{"escaped value matches", nil, alice,
			`{"items":[{"owner":"al\u0069ce"},{"owner":"alice\u0000"}]}`, `{"items":[{"owner":"al\u0069ce"}]}`, 1},
		// A client keeps either duplicate; both must match.
		{"duplicate field with another value drops", nil, alice,
			`{"items":[{"owner":"alice","owner":"bob"},{"owner":"bob","owner":"alice"},{"owner":"alice","owner":"alice"}]}`,
			`{"items":[{"owner":"alice","owner":"alice"}]}`, 2},
		{"descendant filter path", nil, []Filter{{Path: "$..rows", KeepWhere: map[string]any{"owner": "alice"}}},
			`{"a":{"rows":[{"owner":"bob"},{"owner":"alice"}]},"b":[{"rows":[{"owner":"carol"}]}]}`,
			`{"a":{"rows":[{"owner":"alice"}]},"b":[{"rows":[]}]}`, 2},
		{"nested filtered arrays", nil, []Filter{
			{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}},
			{Path: "$.items[*].deals", KeepWhere: map[string]any{"stage": "won"}}},
			`{"items":[{"owner":"alice","deals":[{"stage":"won"},{"stage":"lost"}]},{"owner":"bob","deals":[{"stage":"won"}]}]}`,
			`{"items":[{"owner":"alice","deals":[{"stage":"won"}]}]}`, 2},
		{"root array", nil, []Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}},
			`[{"owner":"alice"},{"owner":"bob"}]`, `[{"owner":"alice"}]`, 1},
		{"filter sees values a rule removes", []Rule{{Path: "$..owner", Action: "remove"}}, alice,
			`{"items":[{"owner":"alice","id":1},{"owner":"bob","id":2}]}`, `{"items":[{"id":1}]}`, 1},
		{"filter sees values a rule hashes", []Rule{{Path: "$..owner", Action: "hash"}}, alice,
			`{"items":[{"owner":"alice"},{"owner":"bob"}]}`, `{"items":[{"owner":` + hashOf("alice") + `}]}`, 1},
		{"rows a rule replaces are still filtered", []Rule{{Path: "$.items[*]", Action: "mask"}}, alice,
			`{"items":[{"owner":"alice"},{"owner":"bob"},{"owner":"alice"}]}`, `{"items":["****","****"]}`, 1},
		{"rows redacted inside", shippedRules, alice,
			`{"items":[{"ssn":"1","owner":"alice","credit_card":"4111111111111111"},{"ssn":"2","owner":"bob"}]}`,
			`{"items":[{"owner":"alice","credit_card":"****1111"}]}`, 1},
		{"filter target removed by a rule", []Rule{{Path: "$.items", Action: "remove"}}, alice,
			`{"items":[{"owner":"bob"}],"n":1}`, `{"n":1}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules, tt.filters)
			got, st, err := transformAll(t, p, tt.in)
			if err != nil {
				t.Fatalf("Transform(%s) error %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Transform(%s) = %s, want %s", tt.in, got, tt.want)
			}
			if st.RowsDropped != tt.dropped {
				t.Errorf("Transform(%s) dropped %d rows, want %d", tt.in, st.RowsDropped, tt.dropped)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Transform(%s) = %s, not valid JSON", tt.in, got)
			}
		})
	}
}

func TestFilterRecord(t *testing.T) {
	own := []Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}}
	tests := []struct {
		name    string
		filters []Filter
		in      string
		want    string // "" when refused
		err     error
	}{
		{"own record", own, `{"id":42,"owner":"alice","ssn":"1"}`, `{"id":42,"owner":"alice","ssn":"1"}`, nil},
		{"someone else's record", own, `{"id":42,"owner":"bob"}`, "", ErrRecordRefused},
		{"record without the field", own, `{"id":42}`, "", ErrRecordRefused},
		{"field as a nested value", own, `{"owner":{"id":"alice"}}`, "", ErrRecordRefused},
		{"field as another type", []Filter{{Path: "$", KeepWhere: map[string]any{"owner_id": json.Number("7")}}}, `{"owner_id":"7"}`, "", ErrRecordRefused},
		{"duplicate field", own, `{"owner":"alice","owner":"bob"}`, "", ErrRecordRefused},
		{"duplicate field, other order", own, `{"owner":"bob","owner":"alice"}`, "", ErrRecordRefused},
		{"nested record", []Filter{{Path: "$.contact", KeepWhere: map[string]any{"owner": "alice"}}},
			`{"contact":{"owner":"bob"},"meta":{}}`, "", ErrRecordRefused},
		{"every element a record", []Filter{{Path: "$.items[*]", KeepWhere: map[string]any{"owner": "alice"}}},
			`{"items":[{"owner":"alice"},{"owner":"bob"}]}`, "", ErrRecordRefused},
		{"scalar target", []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}, `{"items":"alice"}`, "", ErrFilterTarget},
		{"null target", []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}, `{"items":null}`, "", ErrFilterTarget},
		{"scalar document", own, `"alice"`, "", ErrFilterTarget},
		{"missing target", []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}, `{"results":[{"owner":"bob"}]}`, "", ErrFilterTarget},
		{"missing descendant target", []Filter{{Path: "$..items", KeepWhere: map[string]any{"owner": "alice"}}}, `{"a":{"rows":[]}}`, "", ErrFilterTarget},
		{"missing prefix of a wildcard path", []Filter{{Path: "$.items[*].deals", KeepWhere: map[string]any{"stage": "won"}}}, `{"rows":[]}`, "", ErrFilterTarget},
		// An empty list, or rows without the optional member, have no rows to leak there.
		{"present prefix of a wildcard path", []Filter{{Path: "$.items[*].deals", KeepWhere: map[string]any{"stage": "won"}}},
			`{"items":[{"id":1}]}`, `{"items":[{"id":1}]}`, nil},
		{"empty list under a wildcard path", []Filter{{Path: "$.items[*].deals", KeepWhere: map[string]any{"stage": "won"}}},
			`{"items":[]}`, `{"items":[]}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, nil, tt.filters)
			got, _, err := transformAll(t, p, tt.in)
			if !errors.Is(err, tt.err) || tt.err == nil && err != nil {
				t.Fatalf("Transform(%s) error %v, want %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Transform(%s) = %q, want %q", tt.in, got, tt.want)
			}
			var fe *FilterError
			if err != nil && (!errors.As(err, &fe) || fe.Path != tt.filters[fe.Index].Path) {
				t.Errorf("error %v does not name its filter", err)
			}
		})
	}
}

// A refused record must leave nothing behind, whatever the buffer size:
// the proxy turns the error into a 404 only if no byte was sent.
func TestRefusedRecordWritesNothing(t *testing.T) {
	p, err := Compile(shippedRules, []Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}}, Options{BufferBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"id":1,"notes":"` + strings.Repeat("n", 100_000) + `","credit_card":"4111111111111111","owner":"bob"}`
	var dst bytes.Buffer
	w := p.NewWriter(&dst)
	for i := 0; i < len(in); i += 1000 {
		if _, err = w.Write([]byte(in[i:min(i+1000, len(in))])); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Close()
	}
	if !errors.Is(err, ErrRecordRefused) || dst.Len() != 0 {
		t.Errorf("Writer: error %v after %d bytes written, want ErrRecordRefused and none", err, dst.Len())
	}

	r := p.NewReader(strings.NewReader(in))
	if err := r.Prefetch(); !errors.Is(err, ErrRecordRefused) {
		t.Errorf("Reader.Prefetch = %v, want ErrRecordRefused", err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, ErrRecordRefused) {
		t.Errorf("Reader.Read after a refusal = %d, %v", n, err)
	}
}

// Until a filter's path has selected something, nothing may leave: the
// rows might be anywhere (an upstream that renamed "items").
func TestOutputHeldUntilFilterTarget(t *testing.T) {
	filters := []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}
	rows := `[` + strings.Repeat(`{"owner":"bob","ssn":"123-45-6789"},`, 2000) + `{"owner":"bob"}]`

	p, err := Compile(nil, filters, Options{BufferBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	var dst bytes.Buffer
	_, err = p.Transform(&dst, strings.NewReader(`{"results":`+rows+`}`))
	if !errors.Is(err, ErrFilterTarget) || dst.Len() != 0 {
		t.Errorf("renamed array: error %v after %d bytes, want ErrFilterTarget and none", err, dst.Len())
	}

	small, err := Compile(nil, filters, Options{BufferBytes: 1, MaxHeldBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	dst.Reset()
	_, err = small.Transform(&dst, strings.NewReader(`{"results":`+rows+`,"items":[]}`))
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "MaxHeldBytes" || dst.Len() != 0 {
		t.Errorf("rows before the target: error %v after %d bytes, want MaxHeldBytes and none", err, dst.Len())
	}

	// Once found, output streams: a row at a time is held.
	dst.Reset()
	in := `{"items":` + strings.Replace(rows, `"bob"`, `"alice"`, -1) + `}`
	if _, err := small.Transform(&dst, strings.NewReader(in)); err != nil {
		t.Errorf("a long list of small rows: %v", err)
	}
	_, err = small.Transform(io.Discard, strings.NewReader(`{"items":[{"owner":"alice","notes":"`+strings.Repeat("x", 2000)+`"}]}`))
	if !errors.As(err, &le) || le.Limit != "MaxHeldBytes" {
		t.Errorf("one row over MaxHeldBytes: error %v, want MaxHeldBytes", err)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		filters []Filter
		opts    Options
		want    []string // substrings of the error
	}{
		{"bad path", []Rule{{Path: "$.a[", Action: "remove"}}, nil, Options{}, []string{`rule[0]`, `path "$.a["`, `at 4`}},
		{"not a path", []Rule{{Path: "a.b", Action: "remove"}}, nil, Options{}, []string{`rule[0]`, `at 0`, `starts with $`}},
		{"unknown action", []Rule{{Path: "$.a", Action: "delete"}}, nil, Options{}, []string{`rule[0] $.a`, `"delete"`}},
		{"keep_last on remove", []Rule{{Path: "$.a", Action: "remove", KeepLast: 2}}, nil, Options{}, []string{`keep_last only applies to mask`}},
		{"keep_last too large", []Rule{{Path: "$.a", Action: "mask", KeepLast: 65}}, nil, Options{}, []string{`keep_last must be 0 to 64`}},
		{"hash without key", []Rule{{Path: "$.a", Action: "hash"}}, nil, Options{}, []string{`hash needs Options.HashKey`}},
		{"short key", nil, nil, Options{HashKey: []byte("short")}, []string{`HashKey must be at least 32 bytes`}},
		{"remove the root", []Rule{{Path: "$", Action: "remove"}}, nil, Options{}, []string{`whole document`}},
		{"every problem at once", []Rule{{Path: "$.a", Action: "x"}, {Path: "$[-1]", Action: "remove"}}, nil, Options{MaxDepth: -1},
			[]string{`rule[0]`, `rule[1]`, `negative indices`, `MaxDepth`}},
		{"empty keep_where", nil, []Filter{{Path: "$.items"}}, Options{}, []string{`filter[0] $.items: keep_where needs at least one field`}},
		{"keep_where object", nil, []Filter{{Path: "$", KeepWhere: map[string]any{"owner": map[string]any{"id": 1}}}}, Options{}, []string{`keep_where.owner`, `string, a boolean or a number`}},
		{"keep_where null", nil, []Filter{{Path: "$", KeepWhere: map[string]any{"owner": nil}}}, Options{}, []string{`keep_where.owner`}},
		{"keep_where bad number", nil, []Filter{{Path: "$", KeepWhere: map[string]any{"n": json.Number("0x10")}}}, Options{}, []string{`not a JSON number`}},
		{"filter path", nil, []Filter{{Path: "$.items[?@.a]", KeepWhere: map[string]any{"a": 1}}}, Options{}, []string{`filter[0]`, `filter expressions`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.rules, tt.filters, tt.opts)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Compile error %q does not mention %q", err, w)
				}
			}
		})
	}
	var pe *PathError
	if _, err := Compile([]Rule{{Path: "$.a..", Action: "remove"}}, nil, Options{}); !errors.As(err, &pe) || pe.Pos != 5 {
		t.Errorf("Compile error %v, want a *PathError at 5", err)
	}
}
