package redact

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// hashOf is the expected output of the hash action for the bytes v.
func hashOf(v string) string {
	h := hmac.New(sha256.New, testKey)
	h.Write([]byte(v))
	return `"hmac:` + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16]) + `"`
}

func TestTransformActionsAndPaths(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		in    string
		want  string
	}{
		// Actions.
		{"remove member", []Rule{{Path: "$.a", Action: "remove"}}, `{"a":1,"b":2}`, `{"b":2}`},
		{"remove last member leaves no comma", []Rule{{Path: "$.b", Action: "remove"}}, `{"a":1,"b":2}`, `{"a":1}`},
		{"remove only member", []Rule{{Path: "$.a", Action: "remove"}}, `{"a":{"x":[1,2]}}`, `{}`},
		{"remove middle member", []Rule{{Path: "$.b", Action: "remove"}}, `{"a":1,"b":[true],"c":3}`, `{"a":1,"c":3}`},
		{"remove every member", []Rule{{Path: "$.*", Action: "remove"}}, `{"a":1,"b":2,"c":3}`, `{}`},
		{"remove element", []Rule{{Path: "$[1]", Action: "remove"}}, `[0,1,2]`, `[0,2]`},
		{"remove first element", []Rule{{Path: "$[0]", Action: "remove"}}, `[0,1,2]`, `[1,2]`},
		{"remove every element", []Rule{{Path: "$[*]", Action: "remove"}}, `[0,{"a":1},[2]]`, `[]`},
		{"mask string", []Rule{{Path: "$.a", Action: "mask"}}, `{"a":"secret"}`, `{"a":"****"}`},
		{"mask keep_last", []Rule{{Path: "$.cc", Action: "mask", KeepLast: 4}}, `{"cc":"4111111111111111"}`, `{"cc":"****1111"}`},
		{"mask keep_last counts runes", []Rule{{Path: "$.n", Action: "mask", KeepLast: 2}}, `{"n":"Zoë Müller"}`, `{"n":"****er"}`},
		{"mask keep_last multibyte tail", []Rule{{Path: "$.n", Action: "mask", KeepLast: 3}}, `{"n":"abcdëü€"}`, `{"n":"****ëü€"}`},
		{"mask keep_last decodes escapes", []Rule{{Path: "$.n", Action: "mask", KeepLast: 2}}, `{"n":"abc\u0041\""}`, `{"n":"****A\""}`},
		{"mask keep_last surrogate pair is one character", []Rule{{Path: "$.n", Action: "mask", KeepLast: 1}}, `{"n":"ab\ud83d\ude00"}`, `{"n":"****😀"}`},
		{"mask keep_last short string masked whole", []Rule{{Path: "$.n", Action: "mask", KeepLast: 4}}, `{"n":"1234"}`, `{"n":"****"}`},
		{"mask keep_last empty string", []Rule{{Path: "$.n", Action: "mask", KeepLast: 4}}, `{"n":""}`, `{"n":"****"}`},
		{"mask keep_last escapes the tail", []Rule{{Path: "$.n", Action: "mask", KeepLast: 3}}, `{"n":"xxxx\n\u2028\t"}`, `{"n":"****\u000a\u2028\u0009"}`},
		{"mask number", []Rule{{Path: "$.a", Action: "mask", KeepLast: 4}}, `{"a":123456789}`, `{"a":"****"}`},
		{"mask object", []Rule{{Path: "$.a", Action: "mask"}}, `{"a":{"b":"secret","c":[1,2]},"d":1}`, `{"a":"****","d":1}`},
		{"mask array", []Rule{{Path: "$.a", Action: "mask"}}, `{"a":["s1","s2"]}`, `{"a":"****"}`},
		{"mask true", []Rule{{Path: "$.a", Action: "mask"}}, `{"a":true}`, `{"a":"****"}`},
		{"mask null", []Rule{{Path: "$.a", Action: "mask"}}, `{"a":null}`, `{"a":"****"}`},
		{"null string", []Rule{{Path: "$.a", Action: "null"}}, `{"a":"secret"}`, `{"a":null}`},
		{"null object", []Rule{{Path: "$.a", Action: "null"}}, `{"a":{"b":1}}`, `{"a":null}`},
		{"null element", []Rule{{Path: "$[0]", Action: "null"}}, `["x","y"]`, `[null,"y"]`},
		{"hash string", []Rule{{Path: "$.e", Action: "hash"}}, `{"e":"ada@example.com"}`, `{"e":` + hashOf("ada@example.com") + `}`},
		{"hash decodes escapes", []Rule{{Path: "$.e", Action: "hash"}}, `{"e":"ada\u0040example.com"}`, `{"e":` + hashOf("ada@example.com") + `}`},
		{"hash number as written", []Rule{{Path: "$.e", Action: "hash"}}, `{"e":42}`, `{"e":` + hashOf("42") + `}`},
		{"hash literal", []Rule{{Path: "$.e", Action: "hash"}}, `{"e":false}`, `{"e":` + hashOf("false") + `}`},
		{"hash object as compact JSON", []Rule{{Path: "$.e", Action: "hash"}}, `{"e": { "a" : [1, "x"] } }`, `{"e":` + hashOf(`{"a":[1,"x"]}`) + `}`},
		{"hash inside hashed object ignored", []Rule{{Path: "$.e", Action: "hash"}, {Path: "$..a", Action: "remove"}}, `{"e":{"a":1}}`, `{"e":` + hashOf(`{"a":1}`) + `}`},

		// Paths.
		{"root mask", []Rule{{Path: "$", Action: "mask"}}, `{"a":1}`, `"****"`},
		{"root null", []Rule{{Path: "$", Action: "null"}}, `[1,2]`, `null`},
		{"root hash of a scalar document", []Rule{{Path: "$", Action: "hash"}}, `"x"`, hashOf("x")},
		{"dotted", []Rule{{Path: "$.a.b", Action: "remove"}}, `{"a":{"b":1,"c":2},"b":3}`, `{"a":{"c":2},"b":3}`},
		{"dotted does not match elsewhere", []Rule{{Path: "$.a.b", Action: "remove"}}, `{"x":{"a":{"b":1}},"b":2}`, `{"x":{"a":{"b":1}},"b":2}`},
		{"wildcard elements", []Rule{{Path: "$.items[*].ssn", Action: "remove"}}, `{"items":[{"ssn":1,"n":1},{"n":2},{"ssn":3}],"ssn":4}`, `{"items":[{"n":1},{"n":2},{}],"ssn":4}`},
		{"wildcard members", []Rule{{Path: "$.*.ssn", Action: "remove"}}, `{"a":{"ssn":1},"b":{"ssn":2,"k":0},"ssn":3}`, `{"a":{},"b":{"k":0},"ssn":3}`},
		{"dot star on arrays too", []Rule{{Path: "$.items.*.x", Action: "null"}}, `{"items":[{"x":1},{"x":2}]}`, `{"items":[{"x":null},{"x":null}]}`},
		{"index", []Rule{{Path: "$.items[1].x", Action: "mask"}}, `{"items":[{"x":1},{"x":2},{"x":3}]}`, `{"items":[{"x":1},{"x":"****"},{"x":3}]}`},
		{"index out of range", []Rule{{Path: "$.items[9]", Action: "remove"}}, `{"items":[1,2]}`, `{"items":[1,2]}`},
		{"index counts removed elements", []Rule{{Path: "$[0]", Action: "remove"}, {Path: "$[1]", Action: "null"}}, `[1,2,3]`, `[null,3]`},
		{"index on an object does nothing", []Rule{{Path: "$[0]", Action: "remove"}}, `{"0":1}`, `{"0":1}`},
		{"name on an array does nothing", []Rule{{Path: "$.a", Action: "remove"}}, `[{"a":1}]`, `[{"a":1}]`},
		{"descendant", []Rule{{Path: "$..ssn", Action: "remove"}}, `{"ssn":1,"a":{"ssn":2,"b":[{"ssn":3},{"c":{"ssn":{"ssn":4}}}]}}`, `{"a":{"b":[{},{"c":{}}]}}`},
		{"descendant then child", []Rule{{Path: "$..a.b", Action: "null"}}, `{"a":{"b":1},"x":[{"a":{"b":2,"c":3}}],"b":4}`, `{"a":{"b":null},"x":[{"a":{"b":null,"c":3}}],"b":4}`},
		{"descendant index", []Rule{{Path: "$..[0]", Action: "null"}}, `{"a":[1,[2,3]],"b":{"c":[4]}}`, `{"a":[null,[null,3]],"b":{"c":[null]}}`},
		{"descendant wildcard", []Rule{{Path: "$..*", Action: "null"}}, `{"a":[1],"b":{"c":2}}`, `{"a":null,"b":null}`},
		{"descendant bracket name", []Rule{{Path: `$..['credit card']`, Action: "mask"}}, `{"x":{"credit card":"4111"}}`, `{"x":{"credit card":"****"}}`},
		{"bracket single quotes", []Rule{{Path: `$['a b']`, Action: "remove"}}, `{"a b":1,"a":2}`, `{"a":2}`},
		{"bracket double quotes", []Rule{{Path: `$["a.b"]`, Action: "remove"}}, `{"a.b":1,"a":{"b":2}}`, `{"a":{"b":2}}`},
		{"bracket escapes", []Rule{{Path: `$['it\'s']['\u00e9']`, Action: "remove"}}, `{"it's":{"é":1,"e":2}}`, `{"it's":{"e":2}}`},
		{"bracket with blanks", []Rule{{Path: `$[ 'a' ][ 0 ]`, Action: "remove"}}, `{"a":[1,2]}`, `{"a":[2]}`},
		{"unicode member name", []Rule{{Path: `$.größe`, Action: "remove"}}, `{"größe":1,"grosse":2}`, `{"grosse":2}`},
		{"member names compare exactly", []Rule{{Path: `$.ssn`, Action: "remove"}}, `{"SSN":1,"ssn ":2,"ss":3,"ssnx":4}`, `{"SSN":1,"ssn ":2,"ss":3,"ssnx":4}`},

		// Several rules.
		{"strictest wins remove", []Rule{{Path: "$..a", Action: "hash"}, {Path: "$.a", Action: "remove"}}, `{"a":1}`, `{}`},
		{"strictest wins null over mask", []Rule{{Path: "$.a", Action: "mask"}, {Path: "$..a", Action: "null"}}, `{"a":"x"}`, `{"a":null}`},
		{"strictest wins mask over hash", []Rule{{Path: "$.a", Action: "hash"}, {Path: "$.*", Action: "mask", KeepLast: 2}}, `{"a":"abcdef"}`, `{"a":"****ef"}`},
		{"fewest kept characters win", []Rule{{Path: "$.a", Action: "mask", KeepLast: 4}, {Path: "$.a", Action: "mask", KeepLast: 1}}, `{"a":"abcdef"}`, `{"a":"****f"}`},
		{"outer rule replaces inner", []Rule{{Path: "$.a.b", Action: "hash"}, {Path: "$.a", Action: "mask"}}, `{"a":{"b":"x"}}`, `{"a":"****"}`},
		{"shipped rules", shippedRules, `{"items":[{"ssn":"123-45-6789","credit_card":"4111111111111111","n":{"ssn":"1"}}]}`, `{"items":[{"credit_card":"****1111","n":{}}]}`},

		// Pass-through.
		{"no rules compacts", nil, " { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } , \"c\":[ ]}\r\n", `{"a":[1,2],"b":{},"c":[]}`},
		{"numbers verbatim", nil, `[1e999,-0,0.5e-10,1E+2,123456789012345678901234567890,-1.0]`, `[1e999,-0,0.5e-10,1E+2,123456789012345678901234567890,-1.0]`},
		{"strings verbatim", nil, `["\u0073\/\"\\\b\f\n\r\t","é😀","\ud800"]`, `["\u0073\/\"\\\b\f\n\r\t","é😀","\ud800"]`},
		{"scalar document", nil, ` 42 `, `42`},
		{"literal documents", nil, `true`, `true`},
		{"byte order mark dropped", nil, "\uFEFF{\"a\":1}", `{"a":1}`},
		{"empty containers", []Rule{{Path: "$..x", Action: "remove"}}, `{"a":{},"b":[],"c":[{}],"x":[]}`, `{"a":{},"b":[],"c":[{}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.rules, nil)
			got, _, err := transformAll(t, p, tt.in)
			if err != nil {
				t.Fatalf("Transform(%s) error %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Transform(%s) = %s, want %s", tt.in, got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Transform(%s) = %s, not valid JSON", tt.in, got)
			}
		})
	}
}

func TestTransformStats(t *testing.T) {
	p := mustCompile(t, []Rule{
		{Path: "$..ssn", Action: "remove"},
		{Path: "$..cc", Action: "mask", KeepLast: 4},
		{Path: "$..never", Action: "null"},
	}, []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}})
	in := `{"items":[{"owner":"alice","ssn":1,"cc":"4111111111111111"},{"owner":"bob","ssn":2},{"owner":"alice","ssn":3},"x"],"ssn":4}`
	_, st, err := transformAll(t, p, in)
	if err != nil {
		t.Fatal(err)
	}
	// Bob's ssn is not counted: his row was dropped before it.
	want := Stats{Redacted: []int{3, 1, 0}, RowsKept: 2, RowsDropped: 2}
	if st.RowsKept != want.RowsKept || st.RowsDropped != want.RowsDropped || !equalInts(st.Redacted, want.Redacted) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	if st.BytesIn != int64(len(in)) || st.BytesOut == 0 {
		t.Errorf("Stats bytes = %d in, %d out", st.BytesIn, st.BytesOut)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHashIsStableAndKeyed(t *testing.T) {
	rules := []Rule{{Path: "$..email", Action: "hash"}}
	in := `{"a":{"email":"ada@example.com"},"b":[{"email":"ada@example.com"}]}`
	p1 := mustCompile(t, rules, nil)
	p2 := mustCompile(t, rules, nil)
	out1, _, _ := transformAll(t, p1, in)
	out2, _, _ := transformAll(t, p2, in)
	if out1 != out2 {
		t.Errorf("two programs with one key hash differently: %s, %s", out1, out2)
	}
	var doc struct {
		A struct{ Email string }
		B []struct{ Email string }
	}
	if err := json.Unmarshal([]byte(out1), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.A.Email != doc.B[0].Email || !strings.HasPrefix(doc.A.Email, "hmac:") || len(doc.A.Email) != len("hmac:")+22 {
		t.Errorf("hashes %q and %q: want equal, hmac: and 22 base64url characters", doc.A.Email, doc.B[0].Email)
	}
	other, err := Compile(rules, nil, Options{HashKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	out3, _, _ := transformAll(t, other, in)
	if out3 == out1 {
		t.Error("another key gives the same hash")
	}
}

func TestMaskToken(t *testing.T) {
	p, err := Compile([]Rule{{Path: "$.a", Action: "mask", KeepLast: 1}, {Path: "$.b", Action: "mask"}}, nil, Options{MaskToken: `[hidden "x"]`})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := transformAll(t, p, `{"a":"abc","b":1}`)
	if want := `{"a":"[hidden \"x\"]c","b":"[hidden \"x\"]"}`; err != nil || got != want {
		t.Errorf("Transform = %s, %v, want %s", got, err, want)
	}
}
