package decisionlog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/crmgate/crmgate/fielderr"
)

// opKind is what a mask rule does to the field its pointer names.
type opKind uint8

const (
	opNone   opKind = iota
	opErase         // remove the field, list it in erased
	opUpsert        // replace (or add) the field, list it in masked
)

// rule is one configured mask rule.
type rule struct {
	// origin is the configuration key that set the rule, for errors.
	origin  string
	pointer string
	op      opKind
	// value is the JSON of an upsert's value.
	value []byte
	// valueErr says why an upsert's value has no JSON form.
	valueErr error
}

// masker is the compiled mask rules: one tree of pointer tokens per
// document of an event. A nil tree leaves the document as it is.
type masker struct {
	input, result *node
}

// node is one reference token of the compiled pointers. Built once by
// compileRules, then only read.
type node struct {
	// keyJSON is the token as a JSON string, to write a member it adds.
	keyJSON []byte
	op      opKind
	// pointerJSON is the rule's pointer as a JSON string, for the event's
	// erased and masked lists.
	pointerJSON []byte
	// value is the JSON an upsert writes.
	value []byte
	// keys finds children by object key, index by array index (tokens
	// that are array indexes are in both: what a token means depends on
	// the document).
	keys  map[string]*node
	index map[int]*node
	// children lists the children by token, for adding missing members
	// in a fixed order; a child's ord is its place in it.
	children []*node
	ord      int
	token    string
	// upsertBelow: an upsert at or below this node may add members.
	upsertBelow bool
}

// compileRules builds the masker of rules. It reports every rule that is
// not a pointer into the input or the result, and every pair of rules that
// contradict each other: an upsert whose field another rule removes or
// replaces as a whole. A rule under or equal to an erase is otherwise
// redundant and dropped.
func compileRules(rules []rule) (masker, []error) {
	var errs []error
	type parsed struct {
		rule
		tokens []string
	}
	var ok []parsed
	for _, r := range rules {
		if r.valueErr != nil {
			errs = append(errs, r.valueErr)
		}
		tokens, err := parsePointer(r.pointer)
		switch {
		case err != nil:
			errs = append(errs, fielderr.New(r.origin, "%q is not a JSON pointer: %v", r.pointer, err))
			continue
		case !utf8.ValidString(r.pointer):
			// Keys that are not UTF-8 are never logged as such
			// (encoding/json replaces the bytes).
			errs = append(errs, fielderr.New(r.origin, "%q is not UTF-8", r.pointer))
			continue
		case len(tokens) == 0 || (tokens[0] != rootInput && tokens[0] != rootResult):
			errs = append(errs, fielderr.New(r.origin, "%q must start with /input or /result (e.g. /input/subject/email)", r.pointer))
			continue
		}
		ok = append(ok, parsed{r, tokens})
	}

	// Rules are checked against each other, not in order: every pointer
	// names a field of the unmasked document.
	keep := make([]bool, len(ok))
	for i := range ok {
		keep[i] = true
	}
	for i, b := range ok {
		for j, a := range ok {
			if i == j || !hasPrefix(b.tokens, a.tokens) {
				continue
			}
			same := len(a.tokens) == len(b.tokens)
			if same && j > i {
				// A pair of equal pointers is judged once, on the later.
				continue
			}
			if b.op == opErase && (a.op == opErase || !same) {
				// Removed already, or inside what a is replacing.
				keep[i] = false
				continue
			}
			if same {
				errs = append(errs, fielderr.New(b.origin, "%q is also named by %s; name each field once%s",
					b.pointer, a.origin, defaultsHint(a.origin)))
			} else {
				verb := "removes"
				if a.op == opUpsert {
					verb = "replaces"
				}
				errs = append(errs, fielderr.New(b.origin, "%q lies inside %s, which %s %s: its value would never be logged%s",
					b.pointer, a.pointer, a.origin, verb, defaultsHint(a.origin)))
			}
			keep[i] = false
		}
	}

	var m masker
	for i, p := range ok {
		if !keep[i] {
			continue
		}
		root := &m.input
		if p.tokens[0] == rootResult {
			root = &m.result
		}
		if *root == nil {
			*root = newNode(p.tokens[0])
		}
		n := *root
		n.upsertBelow = n.upsertBelow || p.op == opUpsert
		for _, t := range p.tokens[1:] {
			c := n.keys[t]
			if c == nil {
				c = newNode(t)
				if n.keys == nil {
					n.keys = map[string]*node{}
				}
				n.keys[t] = c
			}
			n = c
			n.upsertBelow = n.upsertBelow || p.op == opUpsert
		}
		n.op = p.op
		n.value = p.value
		n.pointerJSON = appendString(nil, formatPointer(p.tokens))
	}
	for _, root := range []*node{m.input, m.result} {
		if root != nil {
			root.finish()
		}
	}
	return m, errs
}

func defaultsHint(origin string) string {
	if origin == "mask_defaults" {
		return " (mask_defaults: false turns the default masks off; list the ones to keep in mask)"
	}
	return ""
}

func hasPrefix(s, prefix []string) bool {
	return len(prefix) <= len(s) && slices.Equal(s[:len(prefix)], prefix)
}

func newNode(token string) *node {
	return &node{token: token, keyJSON: appendString(nil, token)}
}

// finish orders the children and indexes the array-index tokens, below n.
func (n *node) finish() {
	for t, c := range n.keys {
		n.children = append(n.children, c)
		if i, ok := arrayIndex(t); ok {
			if n.index == nil {
				n.index = map[int]*node{}
			}
			n.index[i] = c
		}
	}
	slices.SortFunc(n.children, func(a, b *node) int { return strings.Compare(a.token, b.token) })
	for i, c := range n.children {
		c.ord = i
		c.finish()
	}
}

// notes collects the pointers a masking applied, as JSON strings.
type notes struct {
	erased, masked [][]byte
}

// appendDoc appends the JSON document doc masked by the tree root, and
// reports whether anything was appended (false: the rules erased the whole
// document). doc is a JSON value as encoding/json writes it.
func appendDoc(dst []byte, root *node, doc []byte, nt *notes) ([]byte, bool) {
	switch {
	case root == nil:
		return append(dst, doc...), true
	case root.op == opErase:
		nt.erased = append(nt.erased, root.pointerJSON)
		return dst, false
	case root.op == opUpsert:
		nt.masked = append(nt.masked, root.pointerJSON)
		return append(dst, root.value...), true
	}
	dst, _ = root.apply(dst, doc, skipSpace(doc, 0), nt)
	return dst, true
}

// apply appends the JSON value starting at v[i] with the rules below n
// applied, and returns the index just after the value: each byte of the
// document is scanned once. n itself has no rule (its parent handled it).
// A rule that goes through a scalar names nothing and does nothing.
func (n *node) apply(dst, v []byte, i int, nt *notes) ([]byte, int) {
	if i >= len(v) {
		return dst, len(v)
	}
	switch v[i] {
	case '{':
		return n.applyObject(dst, v, i, nt)
	case '[':
		return n.applyArray(dst, v, i, nt)
	}
	end := skipValue(v, i)
	return append(dst, v[i:end]...), end
}

func (n *node) applyObject(dst, v []byte, start int, nt *notes) ([]byte, int) {
	var seen uint64
	var seenMany []bool
	if len(n.children) > 64 {
		seenMany = make([]bool, len(n.children))
	}
	dst = append(dst, '{')
	first := true
	i := skipSpace(v, start+1)
	for i < len(v) && v[i] == '"' {
		keyEnd := skipString(v, i)
		colon := skipSpace(v, keyEnd)
		if colon >= len(v) || v[colon] != ':' {
			break
		}
		vs := skipSpace(v, colon+1)
		c := n.child(v[i:keyEnd])
		var ve int
		if c == nil {
			ve = skipValue(v, vs)
			dst = comma(dst, &first)
			dst = append(dst, v[i:keyEnd]...)
			dst = append(dst, ':')
			dst = append(dst, v[vs:ve]...)
		} else {
			if seenMany != nil {
				seenMany[c.ord] = true
			} else {
				seen |= 1 << c.ord
			}
			switch c.op {
			case opErase:
				ve = skipValue(v, vs)
				nt.erased = append(nt.erased, c.pointerJSON)
			case opUpsert:
				ve = skipValue(v, vs)
				dst = comma(dst, &first)
				dst = append(dst, v[i:keyEnd]...)
				dst = append(dst, ':')
				dst = append(dst, c.value...)
				nt.masked = append(nt.masked, c.pointerJSON)
			default:
				dst = comma(dst, &first)
				dst = append(dst, v[i:keyEnd]...)
				dst = append(dst, ':')
				dst, ve = c.apply(dst, v, vs, nt)
			}
		}
		if ve <= vs {
			break
		}
		i = skipSpace(v, ve)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	if i < len(v) && v[i] == '}' {
		i++
	}
	if n.upsertBelow {
		// As OPA's upsert does, a missing member is added, with the
		// objects on its way.
		for _, c := range n.children {
			done := seen&(1<<c.ord) != 0
			if seenMany != nil {
				done = seenMany[c.ord]
			}
			if !done && c.upsertBelow {
				dst = comma(dst, &first)
				dst = append(dst, c.keyJSON...)
				dst = append(dst, ':')
				dst = c.create(dst, nt)
			}
		}
	}
	return append(dst, '}'), i
}

// applyArray applies the rules whose token is an index. Arrays never
// grow: an upsert past the end does nothing. Erased elements are removed,
// and every index names an element of the unmasked array.
func (n *node) applyArray(dst, v []byte, start int, nt *notes) ([]byte, int) {
	dst = append(dst, '[')
	first := true
	i := skipSpace(v, start+1)
	for idx := 0; i < len(v) && v[i] != ']'; idx++ {
		c := n.index[idx]
		var ve int
		switch {
		case c == nil:
			ve = skipValue(v, i)
			dst = comma(dst, &first)
			dst = append(dst, v[i:ve]...)
		case c.op == opErase:
			ve = skipValue(v, i)
			nt.erased = append(nt.erased, c.pointerJSON)
		case c.op == opUpsert:
			ve = skipValue(v, i)
			dst = comma(dst, &first)
			dst = append(dst, c.value...)
			nt.masked = append(nt.masked, c.pointerJSON)
		default:
			dst = comma(dst, &first)
			dst, ve = c.apply(dst, v, i, nt)
		}
		if ve <= i {
			break
		}
		i = skipSpace(v, ve)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	if i < len(v) && v[i] == ']' {
		i++
	}
	return append(dst, ']'), i
}

// create appends the value of a member that was missing: an upsert's
// value, or an object holding the upserts below.
func (n *node) create(dst []byte, nt *notes) []byte {
	if n.op == opUpsert {
		nt.masked = append(nt.masked, n.pointerJSON)
		return append(dst, n.value...)
	}
	dst = append(dst, '{')
	first := true
	for _, c := range n.children {
		if c.upsertBelow {
			dst = comma(dst, &first)
			dst = append(dst, c.keyJSON...)
			dst = append(dst, ':')
			dst = c.create(dst, nt)
		}
	}
	return append(dst, '}')
}

// child is n's child for the JSON string key (quotes included).
func (n *node) child(key []byte) *node {
	if len(n.keys) == 0 || len(key) < 2 {
		return nil
	}
	raw := key[1 : len(key)-1]
	if bytes.IndexByte(raw, '\\') < 0 {
		return n.keys[string(raw)]
	}
	var s string
	if json.Unmarshal(key, &s) != nil {
		return nil
	}
	return n.keys[s]
}

func comma(dst []byte, first *bool) []byte {
	if *first {
		*first = false
		return dst
	}
	return append(dst, ',')
}
