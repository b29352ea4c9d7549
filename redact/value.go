package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// cond is one keep_where field: the member name and the value it must
// have, in the form compared.
type cond struct {
	name   string
	kind   byte   // 's' string, 'n' number, 'b' boolean
	want   string // the decoded string, the canonical number, "true" or "false"
	filter int
}

// condSet is every cond of the filters that select one value.
type condSet struct {
	conds []cond
	full  uint64 // a bit for each cond
}

func newCond(name string, v any, filter int) (cond, error) {
	c := cond{name: name, filter: filter}
	if !utf8.ValidString(name) {
		return c, errors.New("the field name is not valid UTF-8")
	}
	var num string
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) {
			return c, errors.New("the value is not valid UTF-8")
		}
		c.kind, c.want = 's', x
		return c, nil
	case bool:
		c.kind, c.want = 'b', strconv.FormatBool(x)
		return c, nil
	case json.Number:
		num = string(x)
	case int:
		num = strconv.Itoa(x)
	case int64:
		num = strconv.FormatInt(x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return c, errors.New("the number is not finite")
		}
		num = strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return c, errors.New("the value must be a string, a boolean or a number")
	}
	if !validNumber([]byte(num)) {
		return c, errors.New("the value " + strconv.Quote(num) + " is not a JSON number")
	}
	c.kind, c.want = 'n', canonNumber([]byte(num))
	return c, nil
}

// capBytes is the most bytes of the body a value equal to c's can take.
func (c cond) capBytes() int {
	if c.kind == 's' {
		return 6*len(c.want) + 2 // every byte escaped, and the quotes
	}
	return 1024 // a number written with padding zeros, and literals
}

// equal reports whether raw, a whole JSON value as the body has it, is
// the value c wants: the same JSON type and the same value.
func (c *cond) equal(raw []byte, scratch *[]byte) bool {
	if len(raw) == 0 {
		return false
	}
	switch c.kind {
	case 's':
		if raw[0] != '"' {
			return false
		}
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			*scratch = appendUnquote((*scratch)[:0], s)
			s = *scratch
		}
		return string(s) == c.want
	case 'b':
		return string(raw) == c.want
	default:
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return false
		}
		return canonNumber(raw) == c.want
	}
}

// validNumber reports whether s is one JSON number (RFC 8259 §6).
func validNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
}

// canonNumber writes a valid JSON number as sign, significant digits and
// exponent, so that numbers compare by exact decimal value without
// rounding through float64: 42, 42.0, 4.2e1 and 420e-1 are all "42e0",
// while 9007199254740993 stays apart from 9007199254740992. An exponent
// too large to compute leaves the number compared as written.
func canonNumber(s []byte) string {
	orig := s
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var digits []byte
	exp := int64(0)
	i := 0
	for i < len(s) && s[i] != '.' && s[i] != 'e' && s[i] != 'E' {
		digits = append(digits, s[i])
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] != 'e' && s[i] != 'E' {
			digits = append(digits, s[i])
			exp--
			i++
		}
	}
	if i < len(s) {
		e := s[i+1:]
		if len(e) > 0 && (e[0] == '+' || e[0] == '-') {
			e = e[1:]
		}
		e = bytes.TrimLeft(e, "0")
		if len(e) > 15 {
			return "raw:" + string(orig)
		}
		n, _ := strconv.ParseInt(string(e), 10, 64)
		if s[i+1] == '-' {
			n = -n
		}
		exp += n
	}
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		return "0"
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + string(digits) + "e" + strconv.FormatInt(exp, 10)
}

// appendUnquote appends the decoded form of s, the inside of a JSON
// string already checked by the scanner, to dst. A \u escape of a lone
// surrogate decodes to U+FFFD, as encoding/json does.
func appendUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if 0xD800 <= r && r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
				if lo := hex4(s[i+2:]); 0xDC00 <= lo && lo < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, e)
		}
	}
	return dst
}

func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		d, _ := hexVal(c)
		r = r<<4 | rune(d)
	}
	return r
}

// appendQuoted appends s, valid UTF-8, as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, []byte(s))
	return append(dst, '"')
}

// appendEscaped appends s, valid UTF-8, escaped as the inside of a JSON
// string. Besides what JSON requires it escapes U+2028 and U+2029, which
// end a line in JavaScript.
func appendEscaped(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		case c < 0x80:
			dst = append(dst, c)
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == 0x2028 || r == 0x2029 {
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		i++
	}
	return dst
}
