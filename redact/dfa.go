package redact

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// The paths run as one deterministic automaton over the member names and
// array indices from the root down to a value. A position is a (path,
// steps matched) pair; a state is the set of positions that hold at a
// value, built ahead of time (subset construction) so that a transform
// does one lookup per member or element whatever the number of paths.
// Names and indices that no path mentions all lead to the same state, so
// the automaton is finite whatever a document holds.

// Path kinds.
const (
	pathRule     uint8 = iota // its value gets the rule's action
	pathFilter                // its value is filtered
	pathPresence              // its value must exist for the filter to be checked
)

type nfaPath struct {
	steps []step
	kind  uint8
	ref   int // rule or filter index
}

// A position is path index<<stepBits | steps matched.
const (
	stepBits = 7
	stepMask = 1<<stepBits - 1
)

// The states every automaton has.
const (
	deadState int32 = 0 // no path can match below: nothing to compare
	rootState int32 = 1
)

// dstate is a state of the automaton: where each child goes, and what
// applies to the value in this state.
type dstate struct {
	names       []string
	nameNext    []int32
	nameMap     map[string]int32 // instead of names when there are many
	otherMember int32
	indices     []int
	indexNext   []int32
	otherElem   int32

	// rule is the rule applied to the value, -1 for none.
	rule int32
	// conds is the condition set of the filters that select the value,
	// -1 for none.
	conds int32
	// marks lists the filters whose required prefix this value is.
	marks []int32
}

// linearNames is the most names a state compares one by one; past it, a
// map is faster.
const linearNames = 8

// member returns the state of the member named name of an object in
// state s.
func (p *Program) member(s int32, name []byte) int32 {
	st := &p.states[s]
	if st.nameMap != nil {
		if n, ok := st.nameMap[string(name)]; ok {
			return n
		}
		return st.otherMember
	}
	for i, nm := range st.names {
		if len(nm) == len(name) && nm == string(name) {
			return st.nameNext[i]
		}
	}
	return st.otherMember
}

// elem returns the state of element i of an array in state s.
func (p *Program) elem(s int32, i int) int32 {
	st := &p.states[s]
	for j, n := range st.indices {
		if n == i {
			return st.indexNext[j]
		}
	}
	return st.otherElem
}

type builder struct {
	paths   []nfaPath
	sets    setIndex // every state's positions
	active  setIndex // the positions that can still advance, to the state whose transitions they gave
	states  []dstate
	order   [][]int32 // the positions of each state, by id
	scratch []int32   // the set next returns, valid until its next call
	live    []int32
}

// setIndex finds sets of positions: one by one while there are few, then
// through a map.
type setIndex struct {
	sets [][]int32
	ids  []int32
	m    map[string]int32
	key  []byte
}

// linearSets is how many sets a setIndex compares one by one.
const linearSets = 32

func (x *setIndex) keyOf(set []int32) string {
	x.key = x.key[:0]
	for _, ns := range set {
		x.key = binary.LittleEndian.AppendUint32(x.key, uint32(ns))
	}
	return string(x.key) // the compiler does not copy for a map index
}

func (x *setIndex) find(set []int32) (int32, bool) {
	if x.m != nil {
		id, ok := x.m[x.keyOf(set)]
		return id, ok
	}
	for i, s := range x.sets {
		if slices.Equal(s, set) {
			return x.ids[i], true
		}
	}
	return 0, false
}

// add records set, which the index keeps, as id's.
func (x *setIndex) add(set []int32, id int32) {
	if x.m != nil {
		x.m[x.keyOf(set)] = id
		return
	}
	if x.sets == nil {
		x.sets, x.ids = make([][]int32, 0, 8), make([]int32, 0, 8)
	}
	x.sets, x.ids = append(x.sets, set), append(x.ids, id)
	if len(x.sets) > linearSets {
		x.m = make(map[string]int32, 2*len(x.sets))
		for i, s := range x.sets {
			x.m[x.keyOf(s)] = x.ids[i]
		}
		x.sets, x.ids = nil, nil
	}
}

// intern returns the state of set, adding it if it is new.
func (b *builder) intern(set []int32) (int32, error) {
	if id, ok := b.sets.find(set); ok {
		return id, nil
	}
	if len(b.states) == maxStates {
		return 0, fmt.Errorf("redact: the paths combine into more than %d states; use fewer descendant (..) paths", maxStates)
	}
	id := int32(len(b.states))
	set = slices.Clone(set)
	b.sets.add(set, id)
	b.states = append(b.states, dstate{})
	b.order = append(b.order, set)
	return id, nil
}

// child is what a transition is taken on.
type child struct {
	member bool
	other  bool // a name or index no path mentions
	name   string
	index  int
}

// next returns the positions that hold at a child of a value where set
// holds.
func (b *builder) next(set []int32, c child) []int32 {
	out := b.scratch[:0]
	defer func() { b.scratch = out }()
	for _, ns := range set {
		steps := b.paths[ns>>stepBits].steps
		k := int(ns & stepMask)
		if k == len(steps) {
			continue
		}
		st := steps[k]
		if st.desc {
			out = append(out, ns)
		}
		switch {
		case st.kind == selWild,
			!c.other && c.member && st.kind == selName && st.name == c.name,
			!c.other && !c.member && st.kind == selIndex && st.index == c.index:
			out = append(out, ns+1)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out
}

// run builds every state reachable from the root, calling info for each.
// States whose positions differ only in paths already matched to the end
// (the value of an ssn versus any other value under $..ssn) move alike:
// their transitions are computed once and shared.
func (b *builder) run(info func([]int32, *dstate) error) ([]dstate, error) {
	if _, err := b.intern(nil); err != nil { // deadState
		return nil, err
	}
	root := make([]int32, 0, len(b.paths))
	for i := range b.paths {
		root = append(root, int32(i)<<stepBits)
	}
	if len(root) == 0 {
		// No paths: the root is a second dead state.
		b.states = append(b.states, dstate{})
		b.order = append(b.order, nil)
	} else if _, err := b.intern(root); err != nil { // rootState
		return nil, err
	}
	var names []string
	var indices []int
	for id := 0; id < len(b.states); id++ {
		set := b.order[id]
		b.live = b.live[:0]
		for _, ns := range set {
			if int(ns&stepMask) < len(b.paths[ns>>stepBits].steps) {
				b.live = append(b.live, ns)
			}
		}
		if src, ok := b.active.find(b.live); ok {
			st := b.states[src]
			st.rule, st.conds, st.marks = 0, 0, nil
			b.states[id] = st
			if err := info(set, &b.states[id]); err != nil {
				return nil, err
			}
			continue
		}
		live := slices.Clone(b.live)
		b.active.add(live, int32(id))
		var st dstate
		names, indices = names[:0], indices[:0]
		for _, ns := range live {
			switch step := b.paths[ns>>stepBits].steps[ns&stepMask]; step.kind {
			case selName:
				names = append(names, step.name)
			case selIndex:
				indices = append(indices, step.index)
			}
		}
		slices.Sort(names)
		names = slices.Compact(names)
		slices.Sort(indices)
		indices = slices.Compact(indices)
		to := func(c child) (int32, error) { return b.intern(b.next(live, c)) }
		var err error
		if st.otherMember, err = to(child{member: true, other: true}); err != nil {
			return nil, err
		}
		if st.otherElem, err = to(child{other: true}); err != nil {
			return nil, err
		}
		if len(names) > 0 {
			st.names = slices.Clone(names)
			st.nameNext = make([]int32, len(names))
		}
		for i, name := range names {
			if st.nameNext[i], err = to(child{member: true, name: name}); err != nil {
				return nil, err
			}
		}
		if len(st.names) > linearNames {
			st.nameMap = make(map[string]int32, len(st.names))
			for i, name := range st.names {
				st.nameMap[name] = st.nameNext[i]
			}
			st.names, st.nameNext = nil, nil
		}
		for _, i := range indices {
			n, err := to(child{index: i})
			if err != nil {
				return nil, err
			}
			st.indices = append(st.indices, i)
			st.indexNext = append(st.indexNext, n)
		}
		b.states[id] = st
		if err := info(set, &b.states[id]); err != nil {
			return nil, err
		}
	}
	return b.states, nil
}
