package redact

import "math"

// Filters: rows and records being decided, and the output held for them.

// row is an object a filter decides on: an element of a filtered array
// (dropped when it does not match) or a selected record (refused).
type row struct {
	depth  int   // len(m.stack) while the row's object is the innermost
	mark   int   // len(m.out) before the row and its comma
	start  int64 // body offset of the row, for MaxHeldBytes
	set    int32
	seen   uint64 // conds matched
	refuse bool
	bad    bool // a cond failed: dropped, its output truncated
}

// compare checks the value just captured against the keep_where fields
// of its name.
func (m *machine) compare(at int) error {
	for j := len(m.rows) - 1; j >= 0 && m.rows[j].depth == len(m.stack); j-- {
		r := &m.rows[j]
		if r.bad {
			continue
		}
		conds := m.p.condSets[r.set].conds
		for k := range conds {
			c := &conds[k]
			if c.name != string(m.capKey) {
				continue
			}
			// A duplicate member must match too: a client keeps one of
			// them, and which one is the client's choice.
			if m.capOver || !c.equal(m.capv, &m.scratch) {
				if err := m.reject(r, c, at); err != nil {
					return err
				}
				break
			}
			r.seen |= 1 << k
		}
	}
	return nil
}

// mismatch records that the current member, an object or array, fails
// every keep_where field of its name in the rows at this depth.
func (m *machine) mismatch(at int) error {
	for j := len(m.rows) - 1; j >= 0 && m.rows[j].depth == len(m.stack); j-- {
		r := &m.rows[j]
		if r.bad {
			continue
		}
		for k := range m.p.condSets[r.set].conds {
			if c := &m.p.condSets[r.set].conds[k]; c.name == string(m.capKey) {
				if err := m.reject(r, c, at); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// reject fails row r on cond c: a record is refused, a row dropped now.
func (m *machine) reject(r *row, c *cond, at int) error {
	if r.refuse {
		return &FilterError{Index: c.filter, Path: m.p.filters[c.filter], Err: ErrRecordRefused,
			Msg: "member " + c.name + " does not equal its keep_where value"}
	}
	m.drop(r)
	return nil
}

// drop truncates the output of a row that does not match and silences
// the rest of it.
func (m *machine) drop(r *row) {
	r.bad = true
	m.out = m.out[:r.mark]
	m.stack[r.depth-2].emitted--
	if r.depth <= len(m.stack) {
		f := &m.stack[r.depth-1]
		f.sink, f.quiet = sinkNone, true
	}
}

// decide finishes the rows whose object closed at depth; it reports
// whether the object stays.
func (m *machine) decide(at, depth int) (bool, error) {
	kept := true
	for len(m.rows) > 0 && m.rows[len(m.rows)-1].depth == depth {
		r := m.rows[len(m.rows)-1]
		m.rows = m.rows[:len(m.rows)-1]
		cs := &m.p.condSets[r.set]
		if !r.bad && r.seen != cs.full {
			missing := cs.conds[0]
			for k, c := range cs.conds {
				if r.seen&(1<<k) == 0 {
					missing = c
					break
				}
			}
			if r.refuse {
				return false, &FilterError{Index: missing.filter, Path: m.p.filters[missing.filter], Err: ErrRecordRefused,
					Msg: "no member " + missing.name}
			}
			r.bad = true
			m.out = m.out[:r.mark]
			m.stack[depth-2].emitted--
		}
		if r.refuse {
			continue
		}
		if r.bad {
			kept = false
			m.stats.RowsDropped++
		} else {
			m.stats.RowsKept++
		}
	}
	return kept, nil
}

const (
	heldForRow    = "a row or record being decided by a filter"
	heldForTarget = "output before the value a filter's path selects"
)

func (m *machine) pushRow(r row) {
	m.rows = append(m.rows, r)
	m.until(r.start + int64(m.p.opts.MaxHeldBytes) + 1)
}

// atStop checks the limits at p[i], which m.stop said could be exceeded
// there, and sets the next stop. A row, a record or the wait for a
// filter's value may hold at most MaxHeldBytes of the body, an object
// being hashed at most MaxTokenBytes; part checks the token being
// scanned.
func (m *machine) atStop(i int) error {
	now := m.off + int64(i)
	held, tok := int64(m.p.opts.MaxHeldBytes), int64(m.p.opts.MaxTokenBytes)
	m.stop = math.MaxInt64
	if m.unseen > 0 {
		if now > held {
			return m.limit(i, "MaxHeldBytes", m.p.opts.MaxHeldBytes, heldForTarget)
		}
		m.until(held + 1)
	}
	for j := range m.rows {
		if r := &m.rows[j]; !r.bad {
			if now-r.start > held {
				return m.limit(i, "MaxHeldBytes", m.p.opts.MaxHeldBytes, heldForRow)
			}
			m.until(r.start + held + 1)
		}
	}
	if m.hashing() {
		if now-m.tokFrom >= tok {
			return m.limit(i, "MaxTokenBytes", m.p.opts.MaxTokenBytes, "an object or array being hashed")
		}
		m.until(m.tokFrom + tok)
	}
	if m.lex != lexNone {
		m.until(m.tokAt + tok + 1)
	}
	return nil
}

// hashing reports whether an object or array is being hashed.
func (m *machine) hashing() bool {
	for j := len(m.stack) - 1; j >= 0; j-- {
		if m.stack[j].sink == sinkTok && m.stack[j].repl >= 0 {
			return true
		}
	}
	return false
}

// safe is how much of out may be passed on: everything before the first
// row or record still being decided, and nothing while a filter's path
// has not been found (the rows might be anywhere).
func (m *machine) safe() int {
	switch {
	case m.unseen > 0:
		return m.outDone
	case len(m.rows) > 0:
		return m.rows[0].mark
	}
	return len(m.out)
}

// passed records that out[outDone:k] was passed on, and reclaims space.
func (m *machine) passed(k int) {
	m.outDone = k
	if m.outDone == len(m.out) {
		m.out, m.outDone = m.out[:0], 0
		for j := range m.rows {
			m.rows[j].mark -= k
		}
		return
	}
	if m.outDone >= 64<<10 || m.outDone > len(m.out)/2 {
		n := copy(m.out, m.out[m.outDone:])
		m.out = m.out[:n]
		for j := range m.rows {
			m.rows[j].mark -= m.outDone
		}
		m.outDone = 0
	}
}
