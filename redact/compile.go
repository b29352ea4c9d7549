package redact

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Actions of a Rule. They are the strings of a decision's redact[].action;
// ActionNull is this package's own addition (a decision of the policy
// schema never asks for it).
const (
	// ActionRemove drops the member (key and value) or the array element.
	ActionRemove = "remove"
	// ActionMask replaces the value with Options.MaskToken; a string with
	// Rule.KeepLast > 0 keeps that many trailing characters after it.
	ActionMask = "mask"
	// ActionHash replaces the value with "hmac:" and the base64url (no
	// padding) of the first 16 bytes of HMAC-SHA256(Options.HashKey,
	// value), the same for the same value wherever and whenever it is seen.
	ActionHash = "hash"
	// ActionNull replaces the value with null.
	ActionNull = "null"
)

// Defaults and bounds of Options and Rule.
const (
	DefaultMaskToken     = "****"
	DefaultMaxDepth      = 64
	DefaultMaxTokenBytes = 1 << 20
	DefaultMaxHeldBytes  = 4 << 20
	DefaultBufferBytes   = 32 << 10
	// MaxKeepLast is the largest Rule.KeepLast, as in the decision schema.
	MaxKeepLast = 64
	// MinHashKeyBytes is the shortest Options.HashKey: 32 bytes, the
	// output size of SHA-256 (RFC 2104 §3 recommends at least that).
	MinHashKeyBytes = 32
	maxMaskToken    = 256
	maxDepthLimit   = 10_000
	// maxStates bounds the automaton Compile builds from the paths.
	maxStates = 4096
	// maxConds bounds the keep_where fields of all filters that select
	// the same value.
	maxConds = 64
)

// Rule is one response field treatment: a decision's redact[] entry. Its
// fields are those of policy.Redaction, so redact.Rule(r) converts one.
type Rule struct {
	// Path is a JSONPath of the subset in docs/redaction.md.
	Path string
	// Action is ActionRemove, ActionMask, ActionHash or ActionNull.
	Action string
	// KeepLast, for ActionMask only, is how many trailing characters
	// (runes) of a string stay visible after the mask token, 0 to
	// MaxKeepLast. A string of KeepLast runes or fewer is masked whole.
	KeepLast int
}

// Filter keeps only the rows that match: a decision's filter[] entry. Its
// fields are those of policy.Filter, so redact.Filter(f) converts one.
type Filter struct {
	// Path selects an array, whose elements are the rows, or an object, a
	// single record.
	Path string
	// KeepWhere maps a member name to the value it must have: a string, a
	// bool or a number (json.Number, int, int64 or a finite float64).
	// Values compare by JSON type and value: "42" is not 42, and 42 is
	// 42.0 and 4.2e1.
	KeepWhere map[string]any
}

// Options are the deployment's settings for every Program. The zero value
// is usable for programs without ActionHash rules: every zero field takes
// its default.
type Options struct {
	// HashKey is the HMAC-SHA256 key of ActionHash, at least
	// MinHashKeyBytes long. It must be the same on every replica and
	// stay the same over time, or hashed values stop joining; it must be
	// secret, or hashes of guessable values (phone numbers, ids) can be
	// reversed by trying them. Nil: Compile refuses ActionHash rules.
	HashKey []byte
	// MaskToken replaces masked values; "" means DefaultMaskToken. It is
	// written as a JSON string, escaped as needed.
	MaskToken string
	// MaxDepth is the deepest nesting of arrays and objects accepted; 0
	// means DefaultMaxDepth.
	MaxDepth int
	// MaxTokenBytes bounds one string (a member name too), one number
	// and a value being hashed, counted in bytes of the body; 0 means
	// DefaultMaxTokenBytes.
	MaxTokenBytes int
	// MaxHeldBytes bounds the output held back while it cannot be
	// released yet: a row or record whose filter is not decided, and
	// everything before the value a filter's path selects; 0 means
	// DefaultMaxHeldBytes.
	MaxHeldBytes int
	// BufferBytes is how much output collects before it is passed on; 0
	// means DefaultBufferBytes. A body whose output is smaller is checked
	// completely before its first byte is passed on, so that a refusal
	// can still become a clean error response.
	BufferBytes int
}

// withDefaults returns o with zero fields set to their defaults, or the
// problems of o.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("redact: options: "+format, args...)) }
	if o.MaskToken == "" {
		o.MaskToken = DefaultMaskToken
	}
	if !utf8.ValidString(o.MaskToken) || len(o.MaskToken) > maxMaskToken {
		bad("MaskToken must be valid UTF-8 of at most %d bytes", maxMaskToken)
	}
	def := func(name string, v *int, d, hi int) {
		switch {
		case *v == 0:
			*v = d
		case *v < 0 || *v > hi:
			bad("%s must be between 1 and %d, got %d", name, hi, *v)
		}
	}
	def("MaxDepth", &o.MaxDepth, DefaultMaxDepth, maxDepthLimit)
	def("MaxTokenBytes", &o.MaxTokenBytes, DefaultMaxTokenBytes, 1<<30)
	def("MaxHeldBytes", &o.MaxHeldBytes, DefaultMaxHeldBytes, 1<<30)
	def("BufferBytes", &o.BufferBytes, DefaultBufferBytes, 1<<30)
	if o.HashKey != nil && len(o.HashKey) < MinHashKeyBytes {
		bad("HashKey must be at least %d bytes, got %d", MinHashKeyBytes, len(o.HashKey))
	}
	o.HashKey = slices.Clone(o.HashKey)
	return o, errors.Join(errs...)
}

// Action codes, in order of precedence: when several rules select the
// same value, the first of remove, null, mask (the fewest kept
// characters first) and hash wins, so a value is never shown more than
// its strictest rule allows.
const (
	actRemove uint8 = iota + 1
	actNull
	actMask
	actHash
)

var actions = map[string]uint8{ActionRemove: actRemove, ActionNull: actNull, ActionMask: actMask, ActionHash: actHash}

// rule is a compiled Rule.
type rule struct {
	action uint8
	keep   int
}

// stricter reports whether rule a (index ia) wins over rule b (index ib).
func stricter(a rule, ia int, b rule, ib int) bool {
	if a.action != b.action {
		return a.action < b.action
	}
	if a.keep != b.keep {
		return a.keep < b.keep
	}
	return ia < ib
}

// Program is a compiled set of rules and filters. It is immutable and
// safe for concurrent use; each transform keeps its own state.
type Program struct {
	opts     Options
	rules    []rule
	filters  []string // paths, for errors
	states   []dstate
	condSets []condSet
	// maskJSON is the mask token as a JSON string.
	maskJSON []byte
	// capLimit bounds a captured keep_where value: longer ones cannot
	// equal any wanted value.
	capLimit int
	nrules   int
}

// Compile checks rules and filters and builds a Program. It reports every
// problem at once, each naming the rule or filter by its index and, for a
// path, the byte position of the problem (a *PathError). A decision whose
// rules do not compile cannot be enforced: the proxy denies the request.
func Compile(rules []Rule, filters []Filter, opts Options) (*Program, error) {
	o, err := opts.withDefaults()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	p := &Program{opts: o, nrules: len(rules), rules: make([]rule, 0, len(rules)), filters: make([]string, 0, len(filters))}
	paths := make([]nfaPath, 0, len(rules)+2*len(filters))
	for i, r := range rules {
		steps, err := parsePath(r.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("redact: rule[%d]: %w", i, err))
		}
		act, ok := actions[r.Action]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("redact: rule[%d] %s: action %q is not one of remove, mask, hash, null", i, r.Path, r.Action))
		case r.KeepLast != 0 && act != actMask:
			errs = append(errs, fmt.Errorf("redact: rule[%d] %s: keep_last only applies to mask", i, r.Path))
		case r.KeepLast < 0 || r.KeepLast > MaxKeepLast:
			errs = append(errs, fmt.Errorf("redact: rule[%d] %s: keep_last must be 0 to %d, got %d", i, r.Path, MaxKeepLast, r.KeepLast))
		case act == actHash && o.HashKey == nil:
			errs = append(errs, fmt.Errorf("redact: rule[%d] %s: hash needs Options.HashKey", i, r.Path))
		case act == actRemove && err == nil && len(steps) == 0:
			errs = append(errs, fmt.Errorf("redact: rule[%d] %s: the whole document cannot be removed (use null)", i, r.Path))
		}
		p.rules = append(p.rules, rule{action: act, keep: r.KeepLast})
		paths = append(paths, nfaPath{steps: steps, kind: pathRule, ref: i})
	}
	for i, f := range filters {
		p.filters = append(p.filters, f.Path)
		steps, err := parsePath(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("redact: filter[%d]: %w", i, err))
		}
		if len(f.KeepWhere) == 0 {
			errs = append(errs, fmt.Errorf("redact: filter[%d] %s: keep_where needs at least one field", i, f.Path))
		}
		for _, name := range sortedKeys(f.KeepWhere) {
			if _, err := newCond(name, f.KeepWhere[name], i); err != nil {
				errs = append(errs, fmt.Errorf("redact: filter[%d] %s: keep_where.%s: %w", i, f.Path, name, err))
			}
		}
		paths = append(paths,
			nfaPath{steps: steps, kind: pathFilter, ref: i},
			nfaPath{steps: steps[:requiredPrefix(steps)], kind: pathPresence, ref: i})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.maskJSON = appendQuoted(nil, o.MaskToken)
	if err := p.build(paths, filters); err != nil {
		return nil, err
	}
	return p, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// build turns the paths into the automaton and the filters into the
// condition sets its states name.
func (p *Program) build(paths []nfaPath, filters []Filter) error {
	b := builder{paths: paths, states: make([]dstate, 0, 8), order: make([][]int32, 0, 8)}
	sets := map[string]int32{}
	info := func(set []int32, st *dstate) error {
		st.rule, st.conds = -1, -1
		var targets []int
		for _, ns := range set {
			np := &paths[ns>>stepBits]
			if int(ns&stepMask) != len(np.steps) {
				continue
			}
			switch np.kind {
			case pathRule:
				if st.rule < 0 || stricter(p.rules[np.ref], np.ref, p.rules[st.rule], int(st.rule)) {
					st.rule = int32(np.ref)
				}
			case pathFilter:
				targets = append(targets, np.ref)
			case pathPresence:
				st.marks = append(st.marks, int32(np.ref))
			}
		}
		if len(targets) == 0 {
			return nil
		}
		var kb []byte
		for _, fi := range targets {
			kb = strconv.AppendInt(append(kb, ','), int64(fi), 10)
		}
		key := string(kb)
		if id, ok := sets[key]; ok {
			st.conds = id
			return nil
		}
		var cs condSet
		for _, fi := range targets {
			f := filters[fi]
			for _, name := range sortedKeys(f.KeepWhere) {
				c, _ := newCond(name, f.KeepWhere[name], fi) // checked by Compile
				cs.conds = append(cs.conds, c)
			}
		}
		if len(cs.conds) > maxConds {
			paths := make([]string, len(targets))
			for i, fi := range targets {
				paths[i] = strconv.Quote(filters[fi].Path)
			}
			return fmt.Errorf("redact: filters %v select the same value with %d keep_where fields in all, at most %d", paths, len(cs.conds), maxConds)
		}
		cs.full = uint64(1)<<len(cs.conds) - 1
		if len(cs.conds) == 64 {
			cs.full = ^uint64(0)
		}
		for _, c := range cs.conds {
			p.capLimit = max(p.capLimit, c.capBytes())
		}
		st.conds = int32(len(p.condSets))
		sets[key] = st.conds
		p.condSets = append(p.condSets, cs)
		return nil
	}
	states, err := b.run(info)
	if err != nil {
		return err
	}
	p.states = states
	return nil
}
