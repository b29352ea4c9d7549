package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// node is a JSON value decoded with every duplicate member kept.
type node struct {
	members []member // an object's
	elems   []node   // an array's
	object  bool
	array   bool
	value   any // a scalar's, as json.Decoder's Token returns it
}

type member struct {
	name string
	node node
}

func decodeNodes(b []byte) (node, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	n, err := decodeNode(d)
	if err != nil {
		return n, err
	}
	if _, err := d.Token(); err != io.EOF {
		return n, errors.New("more than one value")
	}
	return n, nil
}

func decodeNode(d *json.Decoder) (node, error) {
	tok, err := d.Token()
	if err != nil {
		return node{}, err
	}
	switch tok {
	case json.Delim('{'):
		n := node{object: true}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return n, err
			}
			v, err := decodeNode(d)
			if err != nil {
				return n, err
			}
			n.members = append(n.members, member{k.(string), v})
		}
		_, err := d.Token()
		return n, err
	case json.Delim('['):
		n := node{array: true}
		for d.More() {
			v, err := decodeNode(d)
			if err != nil {
				return n, err
			}
			n.elems = append(n.elems, v)
		}
		_, err := d.Token()
		return n, err
	}
	return node{value: tok}, nil
}

var hashed = regexp.MustCompile(`^hmac:[A-Za-z0-9_-]{22}$`)

// checkRedacted fails unless every member the fuzz rules select, at any
// depth and however often, has been treated.
func checkRedacted(t *testing.T, n node, in, out []byte) {
	for _, m := range n.members {
		v := m.node
		ok := true
		switch m.name {
		case "ssn":
			ok = false
		case "cc":
			s, isStr := v.value.(string)
			ok = isStr && strings.HasPrefix(s, "****") && utf8.RuneCountInString(s) <= 6
		case "pw":
			s, isStr := v.value.(string)
			ok = isStr && hashed.MatchString(s)
		case "tok":
			ok = !v.object && !v.array && v.value == nil
		}
		if !ok {
			t.Fatalf("member %q kept %+v\nin  %q\nout %q", m.name, v, in, out)
		}
		checkRedacted(t, v, in, out)
	}
	for _, e := range n.elems {
		checkRedacted(t, e, in, out)
	}
}

// checkFiltered fails unless every value under a member named items is
// an array of objects owned by alice, or such an object.
func checkFiltered(t *testing.T, n node, in, out []byte) {
	owned := func(o node) bool {
		if !o.object {
			return false
		}
		seen := false
		for _, m := range o.members {
			if m.name == "owner" {
				if m.node.value != "alice" {
					return false
				}
				seen = true
			}
		}
		return seen
	}
	for _, m := range n.members {
		if m.name == "items" {
			ok := owned(m.node)
			if m.node.array {
				ok = true
				for _, e := range m.node.elems {
					ok = ok && owned(e)
				}
			}
			if !ok {
				t.Fatalf("items not filtered: %+v\nin  %q\nout %q", m.node, in, out)
			}
		}
		checkFiltered(t, m.node, in, out)
	}
	for _, e := range n.elems {
		checkFiltered(t, e, in, out)
	}
}

func fuzzPrograms(tb testing.TB) (rules, identity, filters, small *Program) {
	rules = mustCompile(tb, []Rule{
		{Path: "$..ssn", Action: ActionRemove},
		{Path: "$..cc", Action: ActionMask, KeepLast: 2},
		{Path: "$..pw", Action: ActionHash},
		{Path: "$..tok", Action: ActionNull},
	}, nil)
	identity = mustCompile(tb, nil, nil)
	filters = mustCompile(tb, nil, []Filter{{Path: "$..items", KeepWhere: map[string]any{"owner": "alice"}}})
	// Small limits, so that fuzzing reaches them.
	small, err := Compile([]Rule{{Path: "$..pw", Action: ActionHash}, {Path: "$..cc", Action: ActionMask, KeepLast: 3}},
		[]Filter{{Path: "$..items", KeepWhere: map[string]any{"owner": "alice"}}},
		Options{HashKey: testKey, MaxDepth: 6, MaxTokenBytes: 24, MaxHeldBytes: 64})
	if err != nil {
		tb.Fatal(err)
	}
	return rules, identity, filters, small
}

// run transforms in whole, and cut at split; both must agree.
func run(t *testing.T, p *Program, in []byte, split int) ([]byte, error) {
	var whole bytes.Buffer
	_, err := p.Transform(&whole, bytes.NewReader(in))
	var cut bytes.Buffer
	w := p.NewWriter(&cut)
	_, cerr := w.Write(in[:split])
	if cerr == nil {
		_, cerr = w.Write(in[split:])
	}
	if cerr == nil {
		cerr = w.Close()
	}
	if kind(err) != kind(cerr) || err == nil && !bytes.Equal(whole.Bytes(), cut.Bytes()) {
		t.Fatalf("whole and cut at %d disagree:\n%q, %v\n%q, %v\nin %q", split, whole.Bytes(), err, cut.Bytes(), cerr, in)
	}
	if err != nil && whole.Len() > 0 {
		t.Fatalf("error %v after writing %q", err, whole.Bytes())
	}
	if err != nil && kind(err)[:5] == "other" {
		t.Fatalf("error %v matches no sentinel", err)
	}
	return whole.Bytes(), err
}

func FuzzTransform(f *testing.F) {
	for _, s := range []string{
		sample,
		`{"ssn":"1","cc":"4111111111111111","pw":"x","tok":{"a":1},"n":[1,2]}`,
		`{"items":[{"owner":"alice","ssn":1},{"owner":"bob"}],"s\u0073n":2}`,
		`{"items":{"owner":"alice"}}`,
		`[{"ssn":"1","ssn":"2"},{"cc":[1,{"cc":2}]}]`,
		"\uFEFF{\"cc\":\"Zoë Müller\"}",
		`{"pw":{"a":[1,"x",{"b":null}]}}`,
		`1e999`,
		`{"a":"\ud800\udc00\u0000"}`,
		"{\"a\":\"\xff\"}",
		`{"a":1,}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	rules, identity, filters, small := fuzzPrograms(f)
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		cut := int(split) % (len(in) + 1)
		body := bytes.TrimPrefix(in, []byte("\uFEFF"))
		valid := json.Valid(body) && utf8.Valid(body)

		out, err := run(t, identity, in, cut)
		switch {
		case err == nil && !valid:
			t.Fatalf("accepted invalid JSON %q as %q", in, out)
		case err == nil:
			a, aerr := decodeNodes(body)
			b, berr := decodeNodes(out)
			if aerr != nil || berr != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("without rules the meaning changed:\nin  %q\nout %q", in, out)
			}
		case valid && !errors.Is(err, ErrLimit):
			t.Fatalf("refused valid JSON %q: %v", in, err)
		}

		out, err = run(t, rules, in, cut)
		if err == nil {
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("invalid output %q for %q", out, in)
			}
			n, derr := decodeNodes(out)
			if derr != nil {
				t.Fatalf("output %q: %v", out, derr)
			}
			checkRedacted(t, n, in, out)
		}
		// Planted secrets never come out.
		if valid {
			planted := append([]byte(`{"ssn":"PLANTED-1","x":`), body...)
			planted = append(planted, `,"y":{"cc":"PLANTED-22","pw":"PLANTED-3","tok":"PLANTED-4"}}`...)
			out, err := run(t, rules, planted, cut%(len(planted)+1))
			if err == nil && bytes.Contains(out, []byte("PLANTED")) {
				t.Fatalf("planted secret leaked: %q", out)
			}
		}

		for _, p := range []*Program{filters, small} {
			out, err = run(t, p, in, cut)
			if err == nil {
				n, derr := decodeNodes(out)
				if derr != nil {
					t.Fatalf("output %q: %v", out, derr)
				}
				checkFiltered(t, n, in, out)
			}
		}
	})
}
