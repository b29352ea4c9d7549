package framing

import "math"

// Byte classes of RFC 9110 §5.6 and RFC 9112, looked up by table so that
// validating a line costs one load and one test per byte.
const (
	classToken      = 1 << iota // tchar (RFC 9110 §5.6.2)
	classValue                  // field-vchar, SP or HTAB (RFC 9110 §5.5)
	classTarget                 // a byte allowed in a request-target
	classQDText                 // qdtext (RFC 9110 §5.6.4)
	classQuotedPair             // the second byte of a quoted-pair
)

// classes is read-only after package initialisation.
var classes = func() (t [256]uint8) {
	for b := 0; b < 256; b++ {
		var c uint8
		isVChar := b > 0x20 && b < 0x7f
		obsText := b >= 0x80
		switch {
		case b >= '0' && b <= '9', b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z':
			c |= classToken
		}
		switch b {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			c |= classToken
		}
		if isVChar || obsText || b == ' ' || b == '\t' {
			c |= classValue | classQuotedPair
			if b != '"' && b != '\\' {
				c |= classQDText
			}
		}
		// RFC 9112 §3.2 targets are ASCII URI forms; bytes above 0x7f are
		// let through because they cannot move a message boundary and
		// some clients send raw UTF-8 paths. Whitespace and controls
		// would change how the request line splits, so they are refused.
		if isVChar || obsText {
			c |= classTarget
		}
		t[b] = c
	}
	return t
}()

// tokenLen returns the length of the token that s starts with.
func tokenLen(s []byte) int {
	for i, b := range s {
		if classes[b]&classToken == 0 {
			return i
		}
	}
	return len(s)
}

// invalidByte picks the reason for a byte that broke a line's grammar: a
// CR that does not end the line is reported as such, since that is how
// CR-based splitting attacks show up.
func invalidByte(b byte, reason string) string {
	if b == '\r' {
		return reasonBareCR
	}
	return reason
}

// trimOWS removes optional whitespace (RFC 9110 §5.6.3) from both ends.
func trimOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func trimLeftOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// field identifies the header fields that framing depends on.
type field uint8

const (
	fieldOther field = iota
	fieldContentLength
	fieldTransferEncoding
	fieldHost
	fieldUpgrade
)

// fieldOf classifies a field name case-insensitively (RFC 9110 §5.1)
// without allocating.
func fieldOf(name []byte) field {
	switch len(name) {
	case 4:
		if lowerEqual(name, "host") {
			return fieldHost
		}
	case 7:
		if lowerEqual(name, "upgrade") {
			return fieldUpgrade
		}
	case 14:
		if lowerEqual(name, "content-length") {
			return fieldContentLength
		}
	case 17:
		if lowerEqual(name, "transfer-encoding") {
			return fieldTransferEncoding
		}
	}
	return fieldOther
}

// lowerEqual reports whether s equals lower, a lower-case string of letters
// and hyphens, ignoring ASCII case. Setting bit 0x20 folds letters; the
// only other byte it maps onto '-' is CR, which is not a tchar and so
// never reaches here.
func lowerEqual(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range len(s) {
		if s[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// parseLength parses a Content-Length value, which RFC 9110 §8.6 defines as
// 1*DIGIT. Signs, inner whitespace, lists ("5, 5", which RFC 9110 §8.6
// lets a recipient collapse but a front end may not) and values that do not
// fit in an int64 are refused.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
		d := int64(b - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// isChunked reports whether a Transfer-Encoding value is exactly "chunked",
// ignoring case and surrounding whitespace. Any other coding, or a list of
// codings, is refused: the gateway only needs chunked (RFC 9112 §7), and
// every extra coding is one more chance for a front end to disagree about
// which coding is final (RFC 9112 §6.3).
func isChunked(v []byte) bool {
	return lowerEqual(trimOWS(v), "chunked")
}

// hexVal maps a hex digit to its value, or returns -1.
func hexVal(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	case b >= 'A' && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// maxChunkDigits matches net/http's chunked reader, which refuses more than
// 16 hex digits; leading zeros count.
const maxChunkDigits = 16

// parseChunkLine parses a chunk-size line without its CRLF (RFC 9112 §7.1):
//
//	chunk-size [ chunk-ext ]
//	chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//
// net/http drops everything after the first ';'; a front end that parses
// extensions differently could find a different size, so their grammar is
// enforced here (RFC 9112 §7.1.1).
func parseChunkLine(line []byte) (int64, string) {
	var n uint64
	i := 0
	for ; i < len(line); i++ {
		d := hexVal(line[i])
		if d < 0 {
			break
		}
		if i == maxChunkDigits {
			return 0, reasonChunkSizeTooLarge
		}
		n = n<<4 | uint64(d)
	}
	if i == 0 {
		return 0, invalidByte(firstOr(line, 0), reasonBadChunkSize)
	}
	if n > math.MaxInt64 {
		return 0, reasonChunkSizeTooLarge
	}
	if i < len(line) {
		if reason := checkChunkExt(line[i:]); reason != "" {
			return 0, reason
		}
	}
	return int64(n), ""
}

func firstOr(s []byte, def byte) byte {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// checkChunkExt validates the chunk-ext that follows a chunk size.
// Whitespace between the size and the first ';' is BWS by the grammar,
// but net/http refuses it, so it is refused here too: a body that passes
// this parser must also pass the one behind it.
func checkChunkExt(s []byte) string {
	for first := true; len(s) > 0; first = false {
		if !first {
			s = trimLeftOWS(s)
		}
		if len(s) == 0 || s[0] != ';' {
			// Includes trailing whitespace after the size, which the
			// grammar allows only before a ';'.
			return invalidByte(firstOr(s, 0), reasonBadChunkExt)
		}
		s = trimLeftOWS(s[1:])
		n := tokenLen(s)
		if n == 0 {
			return invalidByte(firstOr(s, 0), reasonBadChunkExt)
		}
		s = s[n:]
		if t := trimLeftOWS(s); len(t) > 0 && t[0] == '=' {
			s = trimLeftOWS(t[1:])
			if len(s) > 0 && s[0] == '"' {
				n = quotedLen(s)
			} else {
				n = tokenLen(s)
			}
			if n == 0 {
				return invalidByte(firstOr(s, 0), reasonBadChunkExt)
			}
			s = s[n:]
		}
	}
	return ""
}

// quotedLen returns the length of the quoted-string (RFC 9110 §5.6.4) that
// s starts with, or 0 if s does not start with a well-formed one.
func quotedLen(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch b := s[i]; {
		case b == '"':
			return i + 1
		case b == '\\':
			i++
			if i == len(s) || classes[s[i]]&classQuotedPair == 0 {
				return 0
			}
		case classes[b]&classQDText == 0:
			return 0
		}
	}
	return 0
}
