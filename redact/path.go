package redact

import (
	"strconv"
	"unicode/utf8"
)

// The JSONPath subset, in the ABNF of RFC 9535 (whose syntax it follows
// where the two overlap):
//
//	path          = "$" *segment
//	segment       = child / descendant
//	child         = "[" S selector S "]" / "." ( "*" / member-name )
//	descendant    = ".." ( "[" S selector S "]" / "*" / member-name )
//	selector      = quoted-name / "*" / index
//	index         = "0" / (%x31-39 *8DIGIT)            ; 0 to 999999999
//	member-name   = name-first *name-char               ; RFC 9535 §2.5.1.1
//	name-first    = ALPHA / "_" / %x80-10FFFF
//	name-char     = name-first / DIGIT
//	quoted-name   = "'" *single-char "'" / DQUOTE *double-char DQUOTE
//	                                                     ; escapes of RFC 9535 §2.3.1.1
//	S             = *( %x20 / %x09 / %x0A / %x0D )
//
// Left out, because a stream cannot answer them before the value has gone
// by: negative indices, slices, filter expressions ([?…]) and unions
// ([a,b]); write one rule per name instead of a union.
const (
	maxPathBytes = 1024
	maxPathSteps = 64
	maxIndex     = 999_999_999
)

type selKind uint8

const (
	selName  selKind = iota // a member name
	selIndex                // an array index
	selWild                 // every member and every element
)

// step is one segment of a parsed path.
type step struct {
	desc  bool // a descendant segment: the selector applies at any depth below
	kind  selKind
	name  string
	index int
}

// parsePath parses a path of the subset above.
func parsePath(s string) ([]step, error) {
	p := pathParser{s: s}
	return p.parse()
}

type pathParser struct {
	s string
	i int
}

func (p *pathParser) fail(pos int, msg string) error {
	return &PathError{Path: p.s, Pos: pos, Msg: msg}
}

func (p *pathParser) parse() ([]step, error) {
	if len(p.s) > maxPathBytes {
		return nil, p.fail(maxPathBytes, "longer than "+strconv.Itoa(maxPathBytes)+" bytes")
	}
	if !utf8.ValidString(p.s) {
		return nil, p.fail(0, "not valid UTF-8")
	}
	if p.s == "" || p.s[0] != '$' {
		return nil, p.fail(0, "a path starts with $")
	}
	p.i = 1
	var steps []step
	for p.i < len(p.s) {
		if len(steps) == maxPathSteps {
			return nil, p.fail(p.i, "more than "+strconv.Itoa(maxPathSteps)+" segments")
		}
		st, err := p.segment()
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	return steps, nil
}

func (p *pathParser) segment() (step, error) {
	var st step
	switch p.s[p.i] {
	case '[':
		return p.bracket(st)
	case '.':
	default:
		return st, p.fail(p.i, "expected . or [")
	}
	p.i++
	if p.i < len(p.s) && p.s[p.i] == '.' {
		st.desc = true
		p.i++
		if p.i < len(p.s) && p.s[p.i] == '[' {
			return p.bracket(st)
		}
	}
	if p.i >= len(p.s) {
		return st, p.fail(p.i, "expected a member name or * after .")
	}
	if p.s[p.i] == '*' {
		p.i++
		st.kind = selWild
		return st, nil
	}
	start := p.i
	for p.i < len(p.s) {
		r, size := utf8.DecodeRuneInString(p.s[p.i:])
		first := p.i == start
		if !(r == '_' || r >= 0x80 || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || !first && '0' <= r && r <= '9') {
			break
		}
		p.i += size
	}
	if p.i == start {
		msg := "expected a member name or * after ."
		if c := p.s[p.i]; '0' <= c && c <= '9' {
			msg = "a member name cannot start with a digit; write [N] for an index or ['name']"
		}
		return st, p.fail(p.i, msg)
	}
	st.kind, st.name = selName, p.s[start:p.i]
	return st, nil
}

// bracket parses "[" S selector S "]" at p.i.
func (p *pathParser) bracket(st step) (step, error) {
	p.i++ // [
	p.blank()
	if p.i >= len(p.s) {
		return st, p.fail(p.i, "unterminated [")
	}
	switch c := p.s[p.i]; {
	case c == '*':
		p.i++
		st.kind = selWild
	case c == '\'' || c == '"':
		name, err := p.quoted(c)
		if err != nil {
			return st, err
		}
		st.kind, st.name = selName, name
	case c == '-':
		return st, p.fail(p.i, "negative indices are not supported: a stream cannot count from the end")
	case '0' <= c && c <= '9':
		start := p.i
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
		}
		digits := p.s[start:p.i]
		if len(digits) > 1 && digits[0] == '0' {
			return st, p.fail(start, "an index has no leading zeros")
		}
		n, err := strconv.Atoi(digits)
		if err != nil || n > maxIndex {
			return st, p.fail(start, "index larger than "+strconv.Itoa(maxIndex))
		}
		st.kind, st.index = selIndex, n
	case c == '?':
		return st, p.fail(p.i, "filter expressions [?…] are not supported; use a filter's keep_where")
	case c == ':':
		return st, p.fail(p.i, "slices are not supported")
	default:
		return st, p.fail(p.i, "expected a quoted name, * or an index")
	}
	p.blank()
	if p.i >= len(p.s) {
		return st, p.fail(p.i, "unterminated [")
	}
	switch p.s[p.i] {
	case ']':
		p.i++
		return st, nil
	case ',':
		return st, p.fail(p.i, "unions are not supported; write one path for each name")
	case ':':
		return st, p.fail(p.i, "slices are not supported")
	}
	return st, p.fail(p.i, "expected ]")
}

func (p *pathParser) blank() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// quoted parses a quoted name at p.i (RFC 9535 §2.3.1.1).
func (p *pathParser) quoted(q byte) (string, error) {
	start := p.i
	p.i++
	var b []byte
	for {
		if p.i >= len(p.s) {
			return "", p.fail(start, "unterminated quoted name")
		}
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return string(b), nil
		case c < 0x20:
			return "", p.fail(p.i, "control character in a quoted name; escape it")
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		esc := p.i
		p.i++
		if p.i >= len(p.s) {
			return "", p.fail(esc, "unterminated escape")
		}
		switch e := p.s[p.i]; e {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case '/', '\\':
			b = append(b, e)
		case '\'', '"':
			if e != q {
				return "", p.fail(esc, "\\"+string(e)+" is only an escape inside "+string(e)+"-quotes")
			}
			b = append(b, e)
		case 'u':
			r, ok := p.hex4(p.i + 1)
			if !ok {
				return "", p.fail(esc, "\\u needs four hex digits")
			}
			p.i += 4
			switch {
			case 0xDC00 <= r && r <= 0xDFFF:
				return "", p.fail(esc, "lone low surrogate")
			case 0xD800 <= r && r <= 0xDBFF:
				lo, ok := rune(0), p.i+2 < len(p.s) && p.s[p.i+1] == '\\' && p.s[p.i+2] == 'u'
				if ok {
					lo, ok = p.hex4(p.i + 3)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return "", p.fail(esc, "high surrogate without a low surrogate")
				}
				p.i += 6
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.fail(esc, "unknown escape \\"+string(e))
		}
		p.i++
	}
}

func (p *pathParser) hex4(at int) (rune, bool) {
	if at+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[at : at+4]) {
		d, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// requiredPrefix is how many leading steps of a filter's path must select
// something in every document the filter accepts: the steps before the
// first wildcard or index, since an empty array or a record without the
// optional member has no rows there to leak.
func requiredPrefix(steps []step) int {
	for i, st := range steps {
		if st.kind != selName {
			return i
		}
	}
	return len(steps)
}
