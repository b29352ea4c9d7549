package proxy

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Errors of request-target validation. Each is a 400: the gateway refuses a
// target it would have to guess about, rather than guess (RFC 3986 §6
// normalisation is applied only where it is unambiguous).
var (
	ErrTargetForm      = errors.New("request target must be a path starting with /")
	ErrBadEscape       = errors.New("malformed percent-encoding")
	ErrEncodedSlash    = errors.New("encoded slash or backslash in path")
	ErrBackslash       = errors.New("backslash in path")
	ErrDoubleEncoding  = errors.New("double percent-encoding")
	ErrDotSegment      = errors.New("dot segment in path")
	ErrEmptySegment    = errors.New("empty path segment")
	ErrPathParam       = errors.New("semicolon (path parameter) in path")
	ErrFragment        = errors.New("fragment in request target")
	ErrControl         = errors.New("control character in request target")
	ErrInvalidUTF8     = errors.New("invalid UTF-8 in request target")
	ErrBadPathChar     = errors.New("character not allowed in path")
	ErrEncodedReserved = errors.New("encoded query delimiter in path")
	ErrQuery           = errors.New("malformed query string")
	ErrConfusable      = errors.New("Unicode character that some servers read as ASCII punctuation")
)

// target is a validated request target in its canonical forms.
type target struct {
	// path is the decoded path, as routing and policy see it.
	path string
	// escaped is the canonical encoding of path that goes upstream:
	// unreserved characters decoded, everything else percent-encoded with
	// upper-case hex, exactly as received otherwise.
	escaped string
	// segs are the decoded segments of path (after the leading /).
	segs []string
	// nonASCII reports decoded non-ASCII characters in the path.
	nonASCII bool
	// rawQuery is the query as received (validated).
	rawQuery string
}

// parseTarget validates a raw origin-form request target (RFC 9112 §3.2.1)
// and returns its canonical forms. It refuses everything a backend could read
// differently from the gateway: encoded separators, dot segments in any
// encoding, double encoding, path parameters, fragments, control characters,
// invalid UTF-8 and characters outside RFC 3986 pchar.
func parseTarget(raw string) (target, error) {
	var t target
	if raw == "" || raw[0] != '/' {
		return t, ErrTargetForm
	}
	rawPath, rawQuery, hasQuery := strings.Cut(raw, "?")
	if hasQuery {
		if err := checkQuery(rawQuery); err != nil {
			return t, err
		}
		t.rawQuery = rawQuery
	}

	var dec, esc strings.Builder
	dec.Grow(len(rawPath))
	esc.Grow(len(rawPath))
	t.segs = make([]string, 0, 8)
	segStart := 1 // index in dec where the current segment begins
	dec.WriteByte('/')
	esc.WriteByte('/')
	for i := 1; i <= len(rawPath); i++ {
		if i == len(rawPath) || rawPath[i] == '/' {
			seg := dec.String()[segStart:]
			if seg == "." || seg == ".." {
				return t, ErrDotSegment
			}
			if seg == "" && i != len(rawPath) {
				return t, ErrEmptySegment
			}
			t.segs = append(t.segs, seg)
			if i < len(rawPath) {
				dec.WriteByte('/')
				esc.WriteByte('/')
				segStart = dec.Len()
			}
			continue
		}
		c := rawPath[i]
		switch {
		case c == '%':
			b, err := unescapeAt(rawPath, i)
			if err != nil {
				return t, err
			}
			i += 2
			switch {
			case b == '/':
				return t, ErrEncodedSlash
			case b == '\\':
				return t, ErrEncodedSlash
			case b == '%':
				return t, ErrDoubleEncoding
			case b == ';':
				return t, ErrPathParam
			case b == '#':
				return t, ErrFragment
			case b == '?':
				return t, ErrEncodedReserved
			case b < 0x20 || b == 0x7f:
				return t, ErrControl
			case isUnreserved(b):
				dec.WriteByte(b)
				esc.WriteByte(b)
			default:
				if b >= 0x80 {
					t.nonASCII = true
				}
				dec.WriteByte(b)
				esc.WriteByte('%')
				esc.WriteByte(upperhex[b>>4])
				esc.WriteByte(upperhex[b&15])
			}
		case c == ';':
			return t, ErrPathParam
		case c == '#':
			return t, ErrFragment
		case c == '\\':
			return t, ErrBackslash
		case c < 0x20 || c == 0x7f:
			return t, ErrControl
		case c >= 0x80:
			return t, ErrInvalidUTF8
		case isUnreserved(c) || isPathSubDelim(c):
			dec.WriteByte(c)
			esc.WriteByte(c)
		default:
			return t, ErrBadPathChar
		}
	}
	t.path = dec.String()
	if t.nonASCII {
		if !utf8.ValidString(t.path) {
			return t, ErrInvalidUTF8
		}
		if err := checkRunes(t.path); err != nil {
			return t, err
		}
	}
	t.escaped = esc.String()
	return t, nil
}

// checkQuery accepts RFC 3986 query characters with well-formed escapes whose
// decoded bytes are valid UTF-8 without control characters. Semicolons are
// refused: some backends split parameters on them and others do not.
func checkQuery(q string) error {
	var buf [4]byte
	pending := buf[:0] // bytes of a multi-byte UTF-8 sequence being decoded
	flush := func() error {
		if len(pending) > 0 && !utf8.Valid(pending) {
			return ErrInvalidUTF8
		}
		pending = pending[:0]
		return nil
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '%':
			b, err := unescapeAt(q, i)
			if err != nil {
				return err
			}
			i += 2
			if b < 0x20 || b == 0x7f {
				return ErrControl
			}
			if b >= 0x80 {
				if utf8.RuneStart(b) {
					if err := flush(); err != nil {
						return err
					}
				}
				if len(pending) == cap(pending) {
					return ErrInvalidUTF8
				}
				pending = append(pending, b)
				continue
			}
		case c == '#':
			return ErrFragment
		case c == ';':
			return ErrQuery
		case c < 0x20 || c == 0x7f:
			return ErrControl
		case c >= 0x80:
			return ErrInvalidUTF8
		case isUnreserved(c) || isPathSubDelim(c) || c == '/' || c == '?':
		default:
			return ErrQuery
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return flush()
}

// checkRunes refuses decoded non-ASCII characters that a backend could turn
// into something routing did not see: controls (C1, NEL), Unicode spaces and
// line separators, and characters whose compatibility form (NFKC, applied by
// IIS, Java and Python normalisers) contains ASCII, such as the fullwidth
// solidus "／" or the two-dot leader "‥" that normalise to "/" and "..".
func checkRunes(p string) error {
	for _, r := range p {
		if r < utf8.RuneSelf {
			continue
		}
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return ErrControl
		}
		var buf [utf8.UTFMax]byte
		n := utf8.EncodeRune(buf[:], r)
		if !norm.NFKC.IsNormal(buf[:n]) {
			for _, b := range norm.NFKC.Bytes(buf[:n]) {
				if b < utf8.RuneSelf {
					return ErrConfusable
				}
			}
		}
	}
	return nil
}

const upperhex = "0123456789ABCDEF"

// unescapeAt decodes the percent-escape that starts at s[i] ('%').
func unescapeAt(s string, i int) (byte, error) {
	if i+2 >= len(s) {
		return 0, ErrBadEscape
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	if !ok1 || !ok2 {
		return 0, ErrBadEscape
	}
	return hi<<4 | lo, nil
}

func unhex(c byte) (byte, bool) {
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

// isUnreserved reports RFC 3986 §2.3 unreserved characters.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathSubDelim reports the RFC 3986 pchar characters beyond unreserved,
// without ';' (refused separately).
func isPathSubDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}
