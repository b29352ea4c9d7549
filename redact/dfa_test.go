package redact

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// loc is one step from the root to a value: a member name or an index.
type loc struct {
	name  string
	index int // -1 for a member
}

// refMatch is the textbook reading of a path: does it select the value
// at locs?
func refMatch(steps []step, locs []loc) bool {
	if len(steps) == 0 {
		return len(locs) == 0
	}
	st := steps[0]
	sel := func(l loc) bool {
		switch st.kind {
		case selWild:
			return true
		case selName:
			return l.index < 0 && l.name == st.name
		}
		return l.index == st.index
	}
	if !st.desc {
		return len(locs) > 0 && sel(locs[0]) && refMatch(steps[1:], locs[1:])
	}
	for k := range locs {
		if sel(locs[k]) && refMatch(steps[1:], locs[k+1:]) {
			return true
		}
	}
	return false
}

// refApply applies rules to n the slow way: every path against every
// value, the strictest rule winning. It returns false for a removed value.
func refApply(n node, locs []loc, rules []Rule, steps [][]step) (node, bool) {
	best := -1
	for i := range rules {
		if !refMatch(steps[i], locs) {
			continue
		}
		a, _ := actions[rules[i].Action]
		if best < 0 || stricter(rule{action: a}, i, rule{action: actions[rules[best].Action]}, best) {
			best = i
		}
	}
	if best >= 0 && len(locs) > 0 {
		switch rules[best].Action {
		case ActionRemove:
			return node{}, false
		case ActionNull:
			return node{value: nil}, true
		case ActionMask:
			return node{value: "****"}, true
		}
	}
	out := node{object: n.object, array: n.array, value: n.value}
	for _, m := range n.members {
		if v, ok := refApply(m.node, append(locs[:len(locs):len(locs)], loc{name: m.name, index: -1}), rules, steps); ok {
			out.members = append(out.members, member{m.name, v})
		}
	}
	for i, e := range n.elems {
		if v, ok := refApply(e, append(locs[:len(locs):len(locs)], loc{index: i}), rules, steps); ok {
			out.elems = append(out.elems, v)
		}
	}
	return out, true
}

func randomPath(r *rand.Rand) string {
	var b strings.Builder
	b.WriteByte('$')
	for range 1 + r.IntN(4) {
		desc := r.IntN(3) == 0
		if desc {
			b.WriteString("..")
		}
		switch k := r.IntN(8); {
		case k < 5:
			if !desc {
				b.WriteByte('.')
			}
			b.WriteString([]string{"a", "b", "c", "ssn", "items"}[k])
		case k < 7:
			fmt.Fprintf(&b, "[%d]", k-5)
		case desc:
			b.WriteString("*")
		default:
			b.WriteString([]string{".*", "[*]"}[r.IntN(2)])
		}
	}
	return b.String()
}

func randomTree(r *rand.Rand, b *strings.Builder, depth int) {
	switch k := r.IntN(6); {
	case depth < 5 && k < 2:
		b.WriteByte('{')
		for i, n := 0, r.IntN(4); i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "%q:", []string{"a", "b", "c", "ssn", "items", "x"}[r.IntN(6)])
			randomTree(r, b, depth+1)
		}
		b.WriteByte('}')
	case depth < 5 && k < 4:
		b.WriteByte('[')
		for i, n := 0, r.IntN(4); i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			randomTree(r, b, depth+1)
		}
		b.WriteByte(']')
	default:
		fmt.Fprintf(b, "%d", r.IntN(100))
	}
}

// The automaton selects exactly what the paths select, read one by one.
func TestAutomatonAgreesWithPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for i := range 2000 {
		var rules []Rule
		var steps [][]step
		for range 1 + r.IntN(5) {
			path := randomPath(r)
			st, err := parsePath(path)
			if err != nil {
				t.Fatalf("randomPath wrote %q: %v", path, err)
			}
			rules = append(rules, Rule{Path: path, Action: []string{ActionRemove, ActionNull, ActionMask}[r.IntN(3)]})
			steps = append(steps, st)
		}
		p := mustCompile(t, rules, nil)
		var b strings.Builder
		randomTree(r, &b, 0)
		in := `{"a":` + b.String() + `}`
		var out bytes.Buffer
		if _, err := p.Transform(&out, strings.NewReader(in)); err != nil {
			t.Fatalf("Transform(%s): %v", in, err)
		}
		doc, _ := decodeNodes([]byte(in))
		want, _ := refApply(doc, nil, rules, steps)
		got, err := decodeNodes(out.Bytes())
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: rules %v on %s\ngot  %s", i, rules, in, out.String())
		}
	}
}

// Many descendant paths make many states; past linearSets they are
// indexed in a map, and past maxStates Compile refuses.
func TestAutomatonSize(t *testing.T) {
	var rules []Rule
	var in, want strings.Builder
	in.WriteByte('{')
	want.WriteByte('{')
	const n = 6 // 2^6 sets of pending m searches
	for i := range n {
		rules = append(rules, Rule{Path: fmt.Sprintf("$..n%d..m%d", i, i), Action: ActionRemove})
		if i > 0 {
			in.WriteByte(',')
			want.WriteByte(',')
		}
		fmt.Fprintf(&in, `"n%d":{"x":{"m%d":1,"k":2},"m%d":3}`, i, i, (i+1)%n)
		fmt.Fprintf(&want, `"n%d":{"x":{"k":2},"m%d":3}`, i, (i+1)%n)
	}
	in.WriteByte('}')
	want.WriteByte('}')
	p := mustCompile(t, rules, nil)
	if len(p.states) <= linearSets {
		t.Fatalf("%d states, want more than %d", len(p.states), linearSets)
	}
	got, _, err := transformAll(t, p, in.String())
	if err != nil || got != want.String() {
		t.Errorf("Transform = %s, %v\nwant %s", got, err, want.String())
	}

	rules = rules[:0]
	for i := range 14 {
		rules = append(rules, Rule{Path: fmt.Sprintf("$..a%d..b%d", i, i), Action: ActionRemove})
	}
	if _, err := Compile(rules, nil, Options{}); err == nil || !strings.Contains(err.Error(), "states") {
		t.Errorf("Compile of an exploding set of paths = %v, want a refusal", err)
	}
}
