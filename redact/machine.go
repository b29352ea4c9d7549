package redact

import (
	"crypto/sha256"
	"hash"
	"math"
)

// Where the bytes of a value go.
const (
	sinkOut  uint8 = iota // the output
	sinkTok               // m.tok: a value held for its rule (mask, hash)
	sinkNone              // nowhere: removed, replaced or a dropped row
)

// What the next structural byte may be.
const (
	expValue uint8 = iota
	expValueOrClose
	expKey
	expKeyOrClose
	expColon
	expCommaOrClose
	expEnd
)

// frame is an open array or object.
type frame struct {
	n       int // elements seen, for indices
	emitted int // members or elements written, for commas
	state   int32
	conds   int32 // an array's rows must match this condition set; -1: none
	repl    int32 // the rule replacing this value when it closes; -1: none
	kind    byte  // '{' or '['
	sink    uint8
	// quiet: this value does not reach the client as it is (it is
	// removed or replaced, or in a dropped row), so no rule or filter
	// applies inside it.
	quiet bool
}

// disp is what happens to the value about to start.
type disp struct {
	state   int32
	rule    int32 // -1: none
	drop    bool  // an element of a filtered array that is not an object
	capture bool  // a keep_where field of the row being decided
}

// machine is the state of one transform.
type machine struct {
	p *Program

	// out holds output; out[:outDone] was passed on already.
	out     []byte
	outDone int
	tok     []byte // a held value, or the text of an object being hashed
	key     []byte // a member name cut by the end of a write
	kdec    []byte // a decoded member name
	capv    []byte // a captured keep_where value
	capKey  []byte // its member name
	scratch []byte
	stack   []frame
	rows    []row
	seen    []bool // filters whose required prefix was seen
	unseen  int
	stats   Stats
	err     error
	h       hash.Hash
	sum     [sha256.Size]byte

	// The token being scanned.
	lex      uint8
	esc      uint8
	num      uint8
	litPos   uint8
	u8n      uint8
	u8       [4]byte
	lit      string
	escaped  bool // it has a backslash
	capOver  bool // too long to equal any keep_where value
	tokSink  uint8
	tokStart int   // where it starts in the current write
	tokAt    int64 // its body offset
	tokFrom  int64 // body offset of the object or array being hashed
	tokLen   int   // its bytes in earlier writes
	cur      disp

	expect uint8
	next   disp // of the member whose name was just read
	off    int64
	// stop is a body offset at or before the next one where a limit
	// could be exceeded: scanning pauses there to check (atStop), so
	// that a limit is exceeded at the same byte however writes cut
	// the body.
	stop    int64
	started bool
	bom     uint8
}

func (m *machine) init(p *Program) {
	m.p = p
	m.out = getBuf()[:0]
	m.stack = make([]frame, 0, 16)
	m.seen = make([]bool, len(p.filters))
	m.unseen = len(p.filters)
	m.stats.Redacted = make([]int, p.nrules)
	m.expect = expValue
	m.stop = math.MaxInt64
	if m.unseen > 0 {
		m.stop = int64(p.opts.MaxHeldBytes) + 1
	}
}

func (m *machine) syntax(i int, msg string) error {
	return &SyntaxError{Offset: m.off + int64(i), Msg: msg}
}

func (m *machine) limit(i int, name string, v int, detail string) error {
	return &LimitError{Limit: name, Value: v, Offset: m.off + int64(i), Detail: detail}
}

// feed transforms the next part of the body. After an error the machine
// is dead and every call returns that error.
func (m *machine) feed(p []byte) error {
	if m.err != nil {
		return m.err
	}
	m.stats.BytesIn += int64(len(p))
	err := m.chunk(p)
	m.off += int64(len(p))
	if err != nil {
		m.fail(err)
	}
	return err
}

func (m *machine) fail(err error) {
	m.err = err
	m.out, m.outDone, m.rows = m.out[:0], 0, nil
}

var bomBytes = [3]byte{0xEF, 0xBB, 0xBF}

func (m *machine) chunk(p []byte) error {
	i, n := 0, len(p)
	// A UTF-8 byte order mark may open the body (RFC 8259 §8.1 lets a
	// parser ignore it); it is not copied.
	for !m.started && i < n {
		if m.bom == 0 && p[i] != bomBytes[0] {
			m.started = true
			break
		}
		if p[i] != bomBytes[m.bom] {
			return m.syntax(i, "invalid byte order mark")
		}
		m.bom++
		i++
		m.started = m.bom == 3
	}
	m.tokStart = i // a token cut by the previous write resumes here
	for i < n {
		if m.off+int64(i) >= m.stop {
			if err := m.atStop(i); err != nil {
				return err
			}
		}
		if m.lex != lexNone {
			var err error
			if i, err = m.token(p, i); err != nil {
				return err
			}
			continue
		}
		c := p[i]
		if space[c] {
			i++
			continue
		}
		var err error
		switch m.expect {
		case expValue, expValueOrClose:
			if c == ']' && m.expect == expValueOrClose {
				err = m.close(i, c)
				i++
				break
			}
			i, err = m.value(p, i)
		case expKey, expKeyOrClose:
			switch {
			case c == '"':
				m.lex, m.escaped = lexKey, false
				m.startToken(i)
				i, err = m.token(p, i+1)
			case c == '}' && m.expect == expKeyOrClose:
				err = m.close(i, c)
				i++
			default:
				err = m.syntax(i, "expected a member name")
			}
		case expColon:
			if c != ':' {
				return m.syntax(i, "expected :")
			}
			m.expect = expValue
			i++
		case expCommaOrClose:
			top := &m.stack[len(m.stack)-1]
			switch {
			case c == ',':
				m.expect = expValue
				if top.kind == '{' {
					m.expect = expKey
				}
				i++
			case c == top.kind+2: // '{'+2 is '}', '['+2 is ']'
				err = m.close(i, c)
				i++
			default:
				err = m.syntax(i, "expected , or "+string(top.kind+2))
			}
		case expEnd:
			err = m.syntax(i, "data after the JSON value")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// startToken records that a token starts at p[i].
func (m *machine) startToken(i int) {
	m.tokStart, m.tokLen, m.tokAt = i, 0, m.off+int64(i)
	m.until(m.tokAt + int64(m.p.opts.MaxTokenBytes) + 1)
}

// until lowers m.stop to b.
func (m *machine) until(b int64) {
	if b < m.stop {
		m.stop = b
	}
}

// token scans the current token from p[i] on, up to m.stop, and
// finishes it when it ends; otherwise it passes on what was scanned.
func (m *machine) token(p []byte, i int) (int, error) {
	if s := m.stop - m.off; s < int64(len(p)) {
		p = p[:s]
	}
	var done bool
	var err error
	switch m.lex {
	case lexKey, lexStr:
		i, done, err = m.scanString(p, i)
	case lexNum:
		i, done, err = m.scanNumber(p, i)
	default:
		i, done, err = m.scanLiteral(p, i)
	}
	if err != nil {
		return i, err
	}
	if !done {
		err := m.part(p[m.tokStart:], len(p))
		m.tokStart = len(p)
		return len(p), err
	}
	if m.lex == lexKey {
		return i, m.endKey(p[m.tokStart:i], i)
	}
	if err := m.part(p[m.tokStart:i], i); err != nil {
		return i, err
	}
	return i, m.endScalar(i)
}

// part passes on bytes of the current token.
func (m *machine) part(b []byte, at int) error {
	m.tokLen += len(b)
	if m.tokLen > m.p.opts.MaxTokenBytes {
		return m.limit(at, "MaxTokenBytes", m.p.opts.MaxTokenBytes, "one string or number")
	}
	if m.lex == lexKey {
		m.key = append(m.key, b...)
		return nil
	}
	switch m.tokSink {
	case sinkOut:
		m.out = append(m.out, b...)
	case sinkTok:
		m.tok = append(m.tok, b...)
	}
	if m.cur.capture {
		if len(m.capv)+len(b) <= m.p.capLimit {
			m.capv = append(m.capv, b...)
		} else {
			m.capOver = true
		}
	}
	return nil
}

func (m *machine) emit(sink uint8, b []byte) {
	switch sink {
	case sinkOut:
		m.out = append(m.out, b...)
	case sinkTok:
		m.tok = append(m.tok, b...)
	}
}

func (m *machine) emitByte(sink uint8, c byte) {
	switch sink {
	case sinkOut:
		m.out = append(m.out, c)
	case sinkTok:
		m.tok = append(m.tok, c)
	}
}

// sink is where the values of the innermost open container go.
func (m *machine) sink() uint8 {
	if n := len(m.stack); n > 0 {
		return m.stack[n-1].sink
	}
	return sinkOut
}

func (m *machine) removes(r int32) bool { return r >= 0 && m.p.rules[r].action == actRemove }

// endKey decides the member whose name raw (quotes included) is, when it
// was not cut by a write; else raw is its last part.
func (m *machine) endKey(raw []byte, at int) error {
	m.lex = lexNone
	m.expect = expColon
	if m.tokLen += len(raw); m.tokLen > m.p.opts.MaxTokenBytes {
		return m.limit(at, "MaxTokenBytes", m.p.opts.MaxTokenBytes, "a member name")
	}
	if len(m.key) > 0 {
		m.key = append(m.key, raw...)
		raw = m.key
		defer func() { m.key = m.key[:0] }()
	}
	f := &m.stack[len(m.stack)-1]
	d := disp{rule: -1}
	inRow := len(m.rows) > 0 && m.rows[len(m.rows)-1].depth == len(m.stack)
	if f.state != deadState || inRow {
		name := raw[1 : len(raw)-1]
		if m.escaped {
			// Names are compared decoded: "s\u0073n" is ssn.
			m.kdec = appendUnquote(m.kdec[:0], name)
			name = m.kdec
		}
		if f.state != deadState {
			d.state = m.p.member(f.state, name)
			if !f.quiet {
				d.rule = m.p.states[d.state].rule
			}
		}
		if inRow && m.wants(name) {
			d.capture = true
			m.capKey = append(m.capKey[:0], name...)
		}
	}
	m.next = d
	if m.removes(d.rule) {
		return nil
	}
	if f.emitted > 0 {
		m.emitByte(f.sink, ',')
	}
	f.emitted++
	m.emit(f.sink, raw)
	m.emitByte(f.sink, ':')
	return nil
}

// wants reports whether a row being decided at the current depth has a
// keep_where field named name.
func (m *machine) wants(name []byte) bool {
	for j := len(m.rows) - 1; j >= 0 && m.rows[j].depth == len(m.stack); j-- {
		if m.rows[j].bad {
			continue
		}
		for _, c := range m.p.condSets[m.rows[j].set].conds {
			if c.name == string(name) {
				return true
			}
		}
	}
	return false
}

// element decides the next element of the array f, which the byte c
// starts, and writes its comma.
func (m *machine) element(f *frame, c byte, at int) disp {
	d := disp{rule: -1}
	if f.state != deadState {
		d.state = m.p.elem(f.state, f.n)
	}
	f.n++
	if !f.quiet {
		d.rule = m.p.states[d.state].rule
	}
	if m.removes(d.rule) {
		return d
	}
	if f.conds >= 0 && !f.quiet {
		if c != '{' {
			// A row that is not an object has no fields to match.
			m.stats.RowsDropped++
			return disp{state: d.state, rule: -1, drop: true}
		}
		m.pushRow(row{depth: len(m.stack) + 1, mark: len(m.out), set: f.conds, start: m.off + int64(at)})
	}
	if f.emitted > 0 {
		m.emitByte(f.sink, ',')
	}
	f.emitted++
	return d
}

// value starts the value at p[i].
func (m *machine) value(p []byte, i int) (int, error) {
	c := p[i]
	if !valueStart[c] {
		return i, m.syntax(i, "expected a value")
	}
	var d disp
	quiet := false
	if n := len(m.stack); n == 0 {
		d = disp{state: rootState, rule: m.p.states[rootState].rule}
	} else {
		parent := &m.stack[n-1]
		quiet = parent.quiet
		if parent.kind == '[' {
			d = m.element(parent, c, i)
		} else {
			d = m.next
		}
	}
	if d.capture && (c == '{' || c == '[') {
		// An object or array never equals a keep_where value.
		if err := m.mismatch(i); err != nil {
			return i, err
		}
		d.capture = false
		quiet = m.stack[len(m.stack)-1].quiet
	}
	removed := d.drop || m.removes(d.rule)
	st := &m.p.states[d.state]
	for _, fi := range st.marks {
		if !m.seen[fi] {
			m.seen[fi] = true
			m.unseen--
		}
	}
	filtered := st.conds >= 0 && !quiet && !removed
	if filtered && c != '{' && c != '[' {
		return i, &FilterError{Index: m.p.condSets[st.conds].conds[0].filter, Path: m.filterPath(st.conds), Err: ErrFilterTarget,
			Msg: "the path selected a " + kindName(c) + ", not an array or object"}
	}
	sink := m.sink()
	replaced := d.rule >= 0 || d.drop
	switch c {
	case '{', '[':
		if len(m.stack) >= m.p.opts.MaxDepth {
			return i, m.limit(i, "MaxDepth", m.p.opts.MaxDepth, "nesting of arrays and objects")
		}
		f := frame{state: d.state, kind: c, sink: sink, quiet: quiet || replaced, repl: d.rule, conds: -1}
		if filtered && c == '[' {
			f.conds = st.conds
		}
		if filtered && c == '{' {
			m.pushRow(row{depth: len(m.stack) + 1, mark: len(m.out), set: st.conds, refuse: true, start: m.off + int64(i)})
		}
		switch {
		case !replaced:
			m.emitByte(sink, c)
		case d.rule >= 0 && m.p.rules[d.rule].action == actHash:
			f.sink = sinkTok
			m.tok = append(m.tok[:0], c)
			m.tokFrom = m.off + int64(i)
			m.until(m.tokFrom + int64(m.p.opts.MaxTokenBytes))
		default:
			f.sink = sinkNone
		}
		m.stack = append(m.stack, f)
		m.expect = expKeyOrClose
		if c == '[' {
			m.expect = expValueOrClose
		}
		return i + 1, nil
	}
	m.cur = d
	m.tokSink = sink
	if replaced {
		m.tokSink = sinkNone
		if d.rule >= 0 {
			if r := m.p.rules[d.rule]; r.action == actHash || r.action == actMask && r.keep > 0 && c == '"' {
				m.tokSink = sinkTok
				m.tok = m.tok[:0]
			}
		}
	}
	if d.capture {
		m.capv, m.capOver = m.capv[:0], false
	}
	m.startToken(i)
	switch {
	case c == '"':
		m.lex, m.escaped = lexStr, false
		return m.token(p, i+1)
	case c == '-' || isDigit(c):
		m.lex, m.num = lexNum, numStart
	case c == 't':
		m.lex, m.lit, m.litPos = lexLit, "true", 0
	case c == 'f':
		m.lex, m.lit, m.litPos = lexLit, "false", 0
	default: // n
		m.lex, m.lit, m.litPos = lexLit, "null", 0
	}
	return m.token(p, i)
}

func kindName(c byte) string {
	switch c {
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func (m *machine) filterPath(set int32) string {
	return m.p.filters[m.p.condSets[set].conds[0].filter]
}

// endScalar finishes the string, number or literal just scanned.
func (m *machine) endScalar(at int) error {
	kind := m.lex
	m.lex = lexNone
	d := m.cur
	if d.rule >= 0 {
		m.replace(d.rule, m.sink(), kind == lexStr)
	}
	if d.capture {
		if err := m.compare(at); err != nil {
			return err
		}
	}
	m.after()
	return nil
}

func (m *machine) after() {
	if len(m.stack) == 0 {
		m.expect = expEnd
	} else {
		m.expect = expCommaOrClose
	}
}

// close closes the innermost container with c.
func (m *machine) close(at int, c byte) error {
	n := len(m.stack)
	f := m.stack[n-1]
	m.emitByte(f.sink, c)
	m.stack = m.stack[:n-1]
	kept := true
	if len(m.rows) > 0 && m.rows[len(m.rows)-1].depth == n {
		var err error
		if kept, err = m.decide(at, n); err != nil {
			return err
		}
	}
	if f.repl >= 0 && kept {
		m.replace(f.repl, m.sink(), false)
	}
	m.after()
	return nil
}

// finish checks the end of the body.
func (m *machine) finish() error {
	if m.err != nil {
		return m.err
	}
	err := m.end()
	if err != nil {
		m.fail(err)
	}
	return err
}

func (m *machine) end() error {
	if m.lex == lexNum && m.numberEnds() {
		if err := m.endScalar(0); err != nil {
			return err
		}
	}
	if m.lex != lexNone || m.expect != expEnd {
		return &SyntaxError{Offset: m.off, Msg: "unexpected end of the body"}
	}
	for fi, ok := range m.seen {
		if !ok {
			return &FilterError{Index: fi, Path: m.p.filters[fi], Err: ErrFilterTarget, Msg: "the path selected nothing"}
		}
	}
	return nil
}
