package decisionlog

import (
	"errors"
	"strings"
)

// Roots a mask pointer may start with: the two parts of an event that
// hold documents.
const (
	rootInput  = "input"
	rootResult = "result"
)

// errPointerSyntax is wrapped by every reason a string is not a JSON
// pointer.
var errPointerSyntax = errors.New("not a JSON pointer")

// parsePointer splits a JSON pointer (RFC 6901) into its reference tokens,
// unescaping ~1 to / and ~0 to ~ (RFC 6901 §4). The empty pointer, which
// names the whole document, has no tokens. Any other ~ is an error, as is
// a pointer that does not start with /.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, errors.New("must start with /")
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		if !strings.Contains(t, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(t); j++ {
			if t[j] != '~' {
				b.WriteByte(t[j])
				continue
			}
			if j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1') {
				return nil, errors.New("~ must be followed by 0 or 1 (RFC 6901 §3)")
			}
			if t[j+1] == '0' {
				b.WriteByte('~')
			} else {
				b.WriteByte('/')
			}
			j++
		}
		tokens[i] = b.String()
	}
	return tokens, nil
}

// formatPointer is the JSON pointer of tokens, escaping ~ and / (RFC 6901
// §3). It is the inverse of parsePointer.
func formatPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		for i := 0; i < len(t); i++ {
			switch t[i] {
			case '~':
				b.WriteString("~0")
			case '/':
				b.WriteString("~1")
			default:
				b.WriteByte(t[i])
			}
		}
	}
	return b.String()
}

// arrayIndex reports the array index a reference token names: a decimal
// number without leading zeros (RFC 6901 §4). "-" (the element after the
// last) names nothing that exists, so it is not an index here.
func arrayIndex(t string) (int, bool) {
	if t == "" || len(t) > 9 || (t[0] == '0' && len(t) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
