package redact

import (
	"encoding/binary"
	"unicode/utf8"
)

// The scanner checks one token at a time and can stop at any byte: a
// token cut by the end of a write resumes with the next one. Only its
// state (an escape, a partial UTF-8 sequence, where a number is) is kept,
// never the token, unless a rule needs its value.

// Token kinds being scanned.
const (
	lexNone uint8 = iota
	lexKey
	lexStr
	lexNum
	lexLit
)

// Where a number is; the ones marked terminal may end it.
const (
	numStart uint8 = iota
	numMinus
	numZero // terminal
	numInt  // terminal
	numDot
	numFrac // terminal
	numE
	numESign
	numExp // terminal
)

// plain marks the bytes that stand for themselves inside a string and need
// no check: printable ASCII other than " and \.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// space marks JSON's insignificant whitespace (RFC 8259 §2).
var space = func() (t [256]bool) {
	t[' '], t['\t'], t['\n'], t['\r'] = true, true, true, true
	return t
}()

// special8 reports whether any of the 8 bytes in x is not plain: a
// quote, a backslash, a control character or a byte of a multi-byte
// sequence. The tests for a zero byte and a byte below n are the
// classic ones ("Bit Twiddling Hacks", Anderson); each is exact about
// whether such a byte exists, which is all the scan needs.
func special8(x uint64) bool {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	q := x ^ (lsb * '"')
	b := x ^ (lsb * '\\')
	return ((x-lsb*0x20)&^x|(q-lsb)&^q|(b-lsb)&^b|x)&msb != 0
}

// valueStart marks the bytes a value can start with.
var valueStart = func() (t [256]bool) {
	for _, c := range []byte(`{["-0123456789tfn`) {
		t[c] = true
	}
	return t
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanString scans the inside of a string from p[i] on. It returns the
// index past the closing quote and true, or len(p) and false when p ends
// first.
func (m *machine) scanString(p []byte, i int) (int, bool, error) {
	n := len(p)
	if m.esc != 0 {
		var err error
		if i, err = m.scanEscape(p, i); err != nil || m.esc != 0 {
			return n, false, err
		}
	}
	if m.u8n != 0 {
		var err error
		if i, err = m.finishRune(p, i); err != nil || m.u8n != 0 {
			return n, false, err
		}
	}
	for {
		for i+8 <= n && !special8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
		}
		for i < n && plain[p[i]] {
			i++
		}
		if i == n {
			return n, false, nil
		}
		switch c := p[i]; {
		case c == '"':
			return i + 1, true, nil
		case c == '\\':
			m.escaped = true
			m.esc = 1
			var err error
			if i, err = m.scanEscape(p, i+1); err != nil || m.esc != 0 {
				return n, false, err
			}
		case c < 0x20:
			return i, false, m.syntax(i, "control character in a string")
		default:
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				if !utf8.FullRune(p[i:]) {
					m.u8n = uint8(copy(m.u8[:], p[i:]))
					return n, false, nil
				}
				return i, false, m.syntax(i, "invalid UTF-8 in a string")
			}
			i += size
		}
	}
}

// scanEscape continues an escape sequence; m.esc is 1 after the
// backslash, then 2 to 5 inside the four hex digits of \u.
func (m *machine) scanEscape(p []byte, i int) (int, error) {
	for i < len(p) {
		c := p[i]
		if m.esc == 1 {
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				m.esc = 0
				return i + 1, nil
			case 'u':
				m.esc = 2
				i++
				continue
			}
			return i, m.syntax(i, "invalid escape in a string")
		}
		if _, ok := hexVal(c); !ok {
			return i, m.syntax(i, "\\u needs four hex digits")
		}
		i++
		if m.esc++; m.esc == 6 {
			m.esc = 0
			return i, nil
		}
	}
	return i, nil
}

// finishRune completes a UTF-8 sequence cut by the end of the previous
// write.
func (m *machine) finishRune(p []byte, i int) (int, error) {
	for i < len(p) && !utf8.FullRune(m.u8[:m.u8n]) {
		m.u8[m.u8n] = p[i]
		m.u8n++
		i++
	}
	if !utf8.FullRune(m.u8[:m.u8n]) {
		return i, nil
	}
	if r, size := utf8.DecodeRune(m.u8[:m.u8n]); r == utf8.RuneError && size == 1 {
		return i, m.syntax(i, "invalid UTF-8 in a string")
	}
	m.u8n = 0
	return i, nil
}

// scanNumber scans a number from p[i] on (RFC 8259 §6). It returns the
// index of the first byte after the number and true, or len(p) and false
// when p ends first: only the next byte tells that a number has ended.
func (m *machine) scanNumber(p []byte, i int) (int, bool, error) {
	n := len(p)
	for i < n {
		c := p[i]
		switch m.num {
		case numStart:
			switch {
			case c == '-':
				m.num = numMinus
			case c == '0':
				m.num = numZero
			default: // 1-9: the caller checked
				m.num = numInt
			}
		case numMinus:
			switch {
			case c == '0':
				m.num = numZero
			case isDigit(c):
				m.num = numInt
			default:
				return i, false, m.syntax(i, "expected a digit after -")
			}
		case numZero, numInt, numFrac:
			if m.num != numZero && isDigit(c) {
				for i++; i < n && isDigit(p[i]); i++ {
				}
				continue
			}
			switch {
			case c == '.' && m.num != numFrac:
				m.num = numDot
			case c == 'e' || c == 'E':
				m.num = numE
			default:
				return i, true, nil
			}
		case numDot:
			if !isDigit(c) {
				return i, false, m.syntax(i, "expected a digit after .")
			}
			m.num = numFrac
		case numE:
			switch {
			case c == '+' || c == '-':
				m.num = numESign
			case isDigit(c):
				m.num = numExp
			default:
				return i, false, m.syntax(i, "expected a digit in the exponent")
			}
		case numESign:
			if !isDigit(c) {
				return i, false, m.syntax(i, "expected a digit in the exponent")
			}
			m.num = numExp
		case numExp:
			if !isDigit(c) {
				return i, true, nil
			}
		}
		i++
	}
	return n, false, nil
}

// numberEnds reports whether a number may end where the scan stopped.
func (m *machine) numberEnds() bool {
	switch m.num {
	case numZero, numInt, numFrac, numExp:
		return true
	}
	return false
}

// scanLiteral scans true, false or null (m.lit) from p[i] on.
func (m *machine) scanLiteral(p []byte, i int) (int, bool, error) {
	for i < len(p) && int(m.litPos) < len(m.lit) {
		if p[i] != m.lit[m.litPos] {
			return i, false, m.syntax(i, "invalid literal (true, false or null)")
		}
		i++
		m.litPos++
	}
	return i, int(m.litPos) == len(m.lit), nil
}
