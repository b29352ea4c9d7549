package decisionlog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// applyRules masks doc (a JSON value) as the input of an event, with the
// rules of cfg (defaults off unless cfg turns them on).
func applyRules(t testing.TB, cfg Config, doc string) (out string, present bool, erased, masked []string) {
	t.Helper()
	if cfg.MaskDefaults == nil {
		cfg.MaskDefaults = ptr(false)
	}
	m, errs := compileRules(cfg.rules())
	if len(errs) > 0 {
		t.Fatalf("compileRules: %v", errs)
	}
	var nt notes
	b, present := appendDoc(nil, m.input, []byte(doc), &nt)
	for _, p := range nt.erased {
		erased = append(erased, unquote(t, p))
	}
	for _, p := range nt.masked {
		masked = append(masked, unquote(t, p))
	}
	return string(b), present, erased, masked
}

func unquote(t testing.TB, b []byte) string {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return s
}

func TestMask(t *testing.T) {
	up := func(path string, v any) Upsert { return Upsert{Path: path, Value: v} }
	tests := []struct {
		name           string
		mask           []string
		upsert         []Upsert
		doc            string
		want           string
		erased, masked []string
	}{
		{name: "erase nested", mask: []string{"/input/a/b"},
			doc: `{"a":{"b":1,"c":2},"d":3}`, want: `{"a":{"c":2},"d":3}`, erased: []string{"/input/a/b"}},
		{name: "erase first and last members", mask: []string{"/input/a", "/input/d"},
			doc: `{"a":1,"b":2,"d":3}`, want: `{"b":2}`, erased: []string{"/input/a", "/input/d"}},
		{name: "erase missing is not listed", mask: []string{"/input/a/x", "/input/zz"},
			doc: `{"a":{"b":1}}`, want: `{"a":{"b":1}}`},
		{name: "erase through a scalar does nothing", mask: []string{"/input/a/b/c"},
			doc: `{"a":{"b":"s"}}`, want: `{"a":{"b":"s"}}`},
		{name: "erase through null does nothing", mask: []string{"/input/session/age_s"},
			doc: `{"session":null}`, want: `{"session":null}`},
		{name: "erase null member", mask: []string{"/input/session"},
			doc: `{"session":null,"x":1}`, want: `{"x":1}`, erased: []string{"/input/session"}},
		{name: "escapes ~1 and ~0 (RFC 6901)", mask: []string{"/input/a~1b/c~0d"},
			doc: `{"a/b":{"c~d":1,"e":2},"a":{"b":{"c~d":3}}}`, want: `{"a/b":{"e":2},"a":{"b":{"c~d":3}}}`, erased: []string{"/input/a~1b/c~0d"}},
		{name: "~01 is ~1, not /", mask: []string{"/input/~01"},
			doc: `{"~1":1,"/":2}`, want: `{"/":2}`, erased: []string{"/input/~01"}},
		{name: "percent is literal", mask: []string{"/input/a%20b"},
			doc: `{"a b":1,"a%20b":2}`, want: `{"a b":1}`, erased: []string{"/input/a%20b"}},
		{name: "key escaped in the document", mask: []string{"/input/a&b<c>", "/input/é"},
			doc: `{"a\u0026b\u003cc\u003e":1,"\u00e9":2,"k":3}`, want: `{"k":3}`, erased: []string{"/input/a&b<c>", "/input/é"}},
		{name: "empty key", mask: []string{"/input/"},
			doc: `{"":1,"b":2}`, want: `{"b":2}`, erased: []string{"/input/"}},
		{name: "array element", mask: []string{"/input/l/1"},
			doc: `{"l":[0,{"x":[1]},2]}`, want: `{"l":[0,2]}`, erased: []string{"/input/l/1"}},
		{name: "array indexes name the unmasked array", mask: []string{"/input/l/0", "/input/l/1"},
			doc: `{"l":["a","b","c"]}`, want: `{"l":["c"]}`, erased: []string{"/input/l/0", "/input/l/1"}},
		{name: "array index out of range", mask: []string{"/input/l/3"},
			doc: `{"l":[0,1,2]}`, want: `{"l":[0,1,2]}`},
		{name: "leading zero and - are not indexes", mask: []string{"/input/l/01", "/input/l/-", "/input/m/01"},
			doc: `{"l":[0,1],"m":{"01":1,"1":2}}`, want: `{"l":[0,1],"m":{"1":2}}`, erased: []string{"/input/m/01"}},
		{name: "index token on an object is a key", mask: []string{"/input/m/0"},
			doc: `{"m":{"0":"x","1":"y"}}`, want: `{"m":{"1":"y"}}`, erased: []string{"/input/m/0"}},
		{name: "field of every listed element", mask: []string{"/input/items/0/ssn", "/input/items/1/ssn"},
			doc: `{"items":[{"ssn":"1","n":1},{"n":2}]}`, want: `{"items":[{"n":1},{"n":2}]}`, erased: []string{"/input/items/0/ssn"}},
		{name: "erase inside an erase is redundant", mask: []string{"/input/a", "/input/a/b", "/input/a"},
			doc: `{"a":{"b":1},"c":2}`, want: `{"c":2}`, erased: []string{"/input/a"}},
		{name: "whitespace in the document", mask: []string{"/input/a/b"},
			doc: "{ \"a\" : { \"b\" : [ 1 , 2 ] , \"c\" : \"x\" } , \"d\" : true }", want: `{"a":{"c":"x"},"d":true}`, erased: []string{"/input/a/b"}},
		{name: "upsert existing", upsert: []Upsert{up("/input/request/client_ip", "0.0.0.0")},
			doc: `{"request":{"client_ip":"203.0.113.7","id":"r"}}`, want: `{"request":{"client_ip":"0.0.0.0","id":"r"}}`, masked: []string{"/input/request/client_ip"}},
		{name: "upsert any JSON value", upsert: []Upsert{up("/input/a", map[string]any{"k": []any{1, nil}}), up("/input/b", nil)},
			doc: `{"a":"x","b":"y"}`, want: `{"a":{"k":[1,null]},"b":null}`, masked: []string{"/input/a", "/input/b"}},
		{name: "upsert missing adds it, with its parents", upsert: []Upsert{up("/input/a/b/c", 1), up("/input/a/z", 2), up("/input/y", 3)},
			doc: `{"x":1}`, want: `{"x":1,"a":{"b":{"c":1},"z":2},"y":3}`, masked: []string{"/input/a/b/c", "/input/a/z", "/input/y"}},
		{name: "upsert through a scalar does nothing", upsert: []Upsert{up("/input/a/b", 1)},
			doc: `{"a":"s"}`, want: `{"a":"s"}`},
		{name: "upsert array element, never past the end", upsert: []Upsert{up("/input/l/0", "x"), up("/input/l/9", "y")},
			doc: `{"l":[1,2]}`, want: `{"l":["x",2]}`, masked: []string{"/input/l/0"}},
		{name: "erase and upsert together", mask: []string{"/input/s/email"}, upsert: []Upsert{up("/input/s/ip", "")},
			doc: `{"s":{"email":"a@b","ip":"1.2.3.4","id":"a"}}`, want: `{"s":{"ip":"","id":"a"}}`, erased: []string{"/input/s/email"}, masked: []string{"/input/s/ip"}},
		{name: "erase inside an upsert is redundant", mask: []string{"/input/s/email"}, upsert: []Upsert{up("/input/s", "hidden")},
			doc: `{"s":{"email":"a@b"}}`, want: `{"s":"hidden"}`, masked: []string{"/input/s"}},
		{name: "whole input replaced", upsert: []Upsert{up("/input", map[string]any{})},
			doc: `{"a":1}`, want: `{}`, masked: []string{"/input"}},
		{name: "result rules leave the input", mask: []string{"/result/reason"},
			doc: `{"reason":"x"}`, want: `{"reason":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, present, erased, masked := applyRules(t, Config{Mask: tt.mask, Upsert: tt.upsert}, tt.doc)
			if !present {
				t.Fatalf("input erased as a whole")
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("masked document is not JSON: %s", got)
			}
			if got != tt.want {
				t.Errorf("masked = %s, want %s", got, tt.want)
			}
			if d := cmp.Diff(erased, tt.erased); d != "" {
				t.Errorf("erased (-got +want):\n%s", d)
			}
			if d := cmp.Diff(masked, tt.masked); d != "" {
				t.Errorf("masked (-got +want):\n%s", d)
			}
		})
	}
}

func TestMaskWholeInputErased(t *testing.T) {
	_, present, erased, _ := applyRules(t, Config{Mask: []string{"/input", "/input/a"}}, `{"a":1}`)
	if present || !slices.Equal(erased, []string{"/input"}) {
		t.Errorf("present, erased = %v, %v; want false, [/input]", present, erased)
	}
	l := newTestLogger(t, Config{Mask: []string{"/input", "/result"}}, nil, Options{})
	m := decodeEvent(t, encode(l, Entry{Input: testInput(), Decision: testDecision()}))
	if _, ok := m["input"]; ok {
		t.Error("input present")
	}
	if _, ok := m["result"]; ok {
		t.Error("result present")
	}
	if d := cmp.Diff(m["erased"], []any{"/input", "/result"}); d != "" {
		t.Errorf("erased (-got +want):\n%s", d)
	}
}

func TestMaskResult(t *testing.T) {
	l := newTestLogger(t, Config{
		Mask:   []string{"/result/redact/0", "/result/upstream_headers"},
		Upsert: []Upsert{{Path: "/result/reason", Value: "<masked>"}},
	}, nil, Options{})
	d := testDecision()
	d.UpstreamHeaders = map[string]string{"X-CRM-User": "alice"}
	m := decodeEvent(t, encode(l, Entry{Decision: d}))
	res := m["result"].(map[string]any)
	if res["reason"] != "<masked>" || res["upstream_headers"] != nil || len(res["redact"].([]any)) != 1 {
		t.Errorf("result = %v", res)
	}
	if d := cmp.Diff(m["erased"], []any{"/result/redact/0", "/result/upstream_headers"}); d != "" {
		t.Errorf("erased (-got +want):\n%s", d)
	}
	if d := cmp.Diff(m["masked"], []any{"/result/reason"}); d != "" {
		t.Errorf("masked (-got +want):\n%s", d)
	}
}

// The default masks erase every field of the input that identifies a
// person beyond the subject id or holds free text, and their values
// appear nowhere in the line.
func TestDefaultMasks(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	line := encode(l, Entry{Input: testInput(), Decision: testDecision(), Time: testTime})
	m := decodeEvent(t, line)
	var erased []string
	for _, p := range m["erased"].([]any) {
		erased = append(erased, p.(string))
	}
	slices.Sort(erased)
	want := slices.Sorted(slices.Values(DefaultMasks))
	if d := cmp.Diff(erased, want); d != "" {
		t.Errorf("erased (-got +want):\n%s", d)
	}
	for _, secret := range []string{"alice@example.com", "203.0.113.7", "Jane", "s3cr3t-reset-token", "Alice Example", "+44 20", "search?q"} {
		if bytes.Contains(line, []byte(secret)) {
			t.Errorf("%q is in the line: %s", secret, line)
		}
	}
	in := m["input"].(map[string]any)
	sub := in["subject"].(map[string]any)
	if sub["id"] != "k_7f3a" || sub["api_key"].(map[string]any)["name"] != "nightly export" {
		t.Errorf("subject lost what identifies the caller pseudonymously: %v", sub)
	}
	if ua := in["request"].(map[string]any)["headers"].(map[string]any)["user-agent"]; ua == nil {
		t.Error("user-agent erased, want it kept")
	}
}

// Masking works on a copy: the input a request shares with the rest of
// the gateway is the same afterwards, also with many concurrent loggers.
func TestMaskDoesNotChangeInput(t *testing.T) {
	in := testInput()
	before, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	claims := in.Subject.Claims
	nested := claims["nested"].(map[string]any)
	l := newTestLogger(t, Config{
		Mask:   []string{"/input/request/headers/accept", "/input/subject/roles/0", "/input/route/params/id"},
		Upsert: []Upsert{{Path: "/input/session/fingerprint/changed", Value: []any{}}, {Path: "/input/route/tags/0", Value: "x"}},
	}, nil, Options{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_ = encode(l, Entry{Input: in, Decision: testDecision()})
				_, _ = json.Marshal(in) // a concurrent reader of the input
			}
		})
	}
	wg.Wait()
	after, _ := json.Marshal(in)
	if !bytes.Equal(before, after) {
		t.Errorf("input changed:\nbefore %s\nafter  %s", before, after)
	}
	if !reflect.DeepEqual(in.Subject.Claims["nested"], nested) || in.Request.Headers["accept"] != "application/json" || in.Subject.Roles[0] != "sales" {
		t.Error("input maps or slices changed")
	}
}

// refMask is an independent model of the masking, on decoded documents:
// each rule names a field of the unmasked document; erase removes it,
// upsert sets it and adds missing objects on its way; nothing goes
// through scalars or past the end of an array.
func refMask(doc any, rules []rule) (any, bool, []string, []string) {
	type tr struct {
		tokens []string
		r      rule
	}
	var trs []tr
	for _, r := range rules {
		tokens, _ := parsePointer(r.pointer)
		if tokens[0] == rootInput {
			trs = append(trs, tr{tokens, r})
		}
	}
	var erased, masked []string
	note := func(list *[]string, p string) {
		if !slices.Contains(*list, p) {
			*list = append(*list, p)
		}
	}
	var create func(trs []tr, depth int) any
	create = func(trs []tr, depth int) any {
		for _, x := range trs {
			if len(x.tokens) == depth && x.r.op == opUpsert {
				note(&masked, x.r.pointer)
				var v any
				_ = json.Unmarshal(x.r.value, &v)
				return v
			}
		}
		obj := map[string]any{}
		groups := map[string][]tr{}
		for _, x := range trs {
			if len(x.tokens) > depth && x.r.op == opUpsert {
				groups[x.tokens[depth]] = append(groups[x.tokens[depth]], x)
			}
		}
		for k, g := range groups {
			obj[k] = create(g, depth+1)
		}
		return obj
	}
	// walk returns the masked v and whether it stays.
	var walk func(v any, trs []tr, depth int, exists bool) (any, bool)
	walk = func(v any, trs []tr, depth int, exists bool) (any, bool) {
		for _, x := range trs {
			if len(x.tokens) == depth && x.r.op == opErase {
				if exists {
					note(&erased, x.r.pointer)
				}
				return nil, false
			}
		}
		for _, x := range trs {
			if len(x.tokens) == depth && x.r.op == opUpsert {
				return create([]tr{x}, depth), true
			}
		}
		if !exists {
			for _, x := range trs {
				if x.r.op == opUpsert {
					return create(trs, depth), true
				}
			}
			return nil, false
		}
		groups := map[string][]tr{}
		for _, x := range trs {
			groups[x.tokens[depth]] = append(groups[x.tokens[depth]], x)
		}
		switch v := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, e := range v {
				if g := groups[k]; g != nil {
					if w, ok := walk(e, g, depth+1, true); ok {
						out[k] = w
					}
				} else {
					out[k] = e
				}
			}
			for k, g := range groups {
				if _, ok := v[k]; !ok {
					if w, ok := walk(nil, g, depth+1, false); ok {
						out[k] = w
					}
				}
			}
			return out, true
		case []any:
			out := []any{}
			for i, e := range v {
				if g := groups[strconv.Itoa(i)]; g != nil {
					if w, ok := walk(e, g, depth+1, true); ok {
						out = append(out, w)
					}
				} else {
					out = append(out, e)
				}
			}
			return out, true
		}
		return v, true
	}
	out, ok := walk(doc, trs, 1, true)
	return out, ok, erased, masked
}

// FuzzMask checks the masking of encoded documents against refMask, and
// that it always gives one valid JSON value.
func FuzzMask(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":2}]},"d":"x"}`, "-/input/a/b/1/c\n+/input/d=0\n+/input/e/f=null")
	f.Add(`{"request":{"headers":{"user-agent":"x\n"},"query":{"q":["a"]}}}`, "-/input/request/query\n-/input/request/headers/user-agent")
	f.Add(`{"l":[[1,2],[3]],"m":{"0":{"1":2}}}`, "-/input/l/0/1\n+/input/m/0/1=\"x\"\n-/input/l/1")
	f.Add(`{"a~b":{"c/d":1},"":[]}`, "-/input/a~0b/c~1d\n+/input//0=1")
	f.Add(`[1,2,3]`, "-/input/1\n+/input/0={}")
	f.Add(`"scalar"`, "-/input/a")
	f.Add(`{"a":1}`, "+/input={}")
	f.Fuzz(func(t *testing.T, doc, spec string) {
		var v any
		d := json.NewDecoder(strings.NewReader(doc))
		d.UseNumber()
		if d.Decode(&v) != nil || d.More() {
			return
		}
		canon, err := json.Marshal(v) // no duplicate keys, as encoding/json writes
		if err != nil {
			return
		}
		var rules []rule
		for i, ln := range strings.Split(spec, "\n") {
			if len(ln) < 2 || i > 16 {
				continue
			}
			r := rule{origin: "fuzz", op: opErase, pointer: ln[1:]}
			if ln[0] == '+' {
				p, val, _ := strings.Cut(ln[1:], "=")
				if !json.Valid([]byte(val)) {
					continue
				}
				var x any
				_ = json.Unmarshal([]byte(val), &x)
				b, _ := json.Marshal(x)
				r = rule{origin: "fuzz", op: opUpsert, pointer: p, value: b}
			}
			rules = append(rules, r)
		}
		m, errs := compileRules(rules)
		if len(errs) > 0 {
			return
		}
		var nt notes
		got, present := appendDoc(nil, m.input, canon, &nt)
		wantDoc, wantPresent, wantErased, wantMasked := refMask(v, rules)
		if present != wantPresent {
			t.Fatalf("present = %v, want %v", present, wantPresent)
		}
		var erased, masked []string
		for _, p := range nt.erased {
			erased = append(erased, unquote(t, p))
		}
		for _, p := range nt.masked {
			masked = append(masked, unquote(t, p))
		}
		slices.Sort(erased)
		slices.Sort(masked)
		slices.Sort(wantErased)
		slices.Sort(wantMasked)
		if !slices.Equal(erased, wantErased) || !slices.Equal(masked, wantMasked) {
			t.Fatalf("erased, masked = %q, %q; want %q, %q", erased, masked, wantErased, wantMasked)
		}
		if !present {
			return
		}
		var gotDoc any
		gd := json.NewDecoder(bytes.NewReader(got))
		gd.UseNumber()
		if err := gd.Decode(&gotDoc); err != nil || gd.More() {
			t.Fatalf("masked document is not one JSON value: %q", got)
		}
		wb, _ := json.Marshal(wantDoc)
		var want any
		wd := json.NewDecoder(bytes.NewReader(wb))
		wd.UseNumber()
		_ = wd.Decode(&want)
		if d := cmp.Diff(gotDoc, want); d != "" {
			t.Fatalf("masked %s with %q (-got +want):\n%s", canon, spec, d)
		}
	})
}
