package auth

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReturnLen bounds a return URL: it travels in the pre-login cookie,
// which browsers cap at 4096 bytes.
const MaxReturnLen = 2048

// SafeReturn reports whether raw is a safe place to send a browser after
// login, and returns it, or "/" when it is not. Only same-origin relative
// references to an absolute path qualify, and only in a spelling that no
// browser, proxy or backend reads as another host (an open redirect,
// RFC 9700 §4.11):
//
//   - it starts with exactly one "/": not "//host" (a network-path
//     reference, RFC 3986 §4.2) and not "/\host", which browsers read as
//     "//host" (WHATWG URL: a backslash is a path separator in special
//     schemes); so there is no scheme and no authority, hence no "@" trick;
//   - no backslash, control character, space or non-ASCII character
//     anywhere: browsers strip tab, CR and LF inside URLs, so "/\t/evil"
//     would become "//evil";
//   - in the path, no "@", and no encoded "/" or "\" (%2F, %5C), which
//     some servers decode before routing;
//   - decoded once, it must pass the same checks (so %09, %0A, %0D, %00,
//     %2F%2F... and their double encodings are refused), be valid UTF-8
//     (no overlong forms) and hold no Unicode slash look-alikes that
//     NFKC-normalising backends turn into "/" or "\";
//   - at most MaxReturnLen bytes.
func SafeReturn(raw string) (string, bool) {
	if !safeReturn(raw, false) {
		return "/", false
	}
	dec, err := url.PathUnescape(raw)
	if err != nil || !utf8.ValidString(dec) || !safeReturn(dec, true) {
		return "/", false
	}
	return raw, true
}

// safeReturn checks one spelling; decoded allows the non-ASCII characters
// that percent-encoding produced.
func safeReturn(s string, decoded bool) bool {
	if len(s) == 0 || len(s) > MaxReturnLen || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	path := s
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		path = s[:i]
	}
	if strings.Contains(path, "@") {
		return false
	}
	if p := strings.ToUpper(path); strings.Contains(p, "%2F") || strings.Contains(p, "%5C") {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\\' || r < 0x20 || r == 0x7f:
			return false
		case !decoded && (r == ' ' || r > 0x7e):
			return false
		case decoded && r > 0x7e && (unicode.IsControl(r) || unicode.IsSpace(r) || isSlashLike(r) || r == utf8.RuneError):
			return false
		}
	}
	return true
}

// isSlashLike reports characters that Unicode compatibility normalisation
// (NFKC) maps to "/" or "\", or that render as one.
func isSlashLike(r rune) bool {
	switch r {
	case '\uFF0F', // fullwidth solidus
		'\uFF3C', // fullwidth reverse solidus
		'\u2215', // division slash
		'\u2044', // fraction slash
		'\u2216', // set minus
		'\u29F8', // big solidus
		'\u29F9', // big reverse solidus
		'\uFE68', // small reverse solidus
		'\u3033', // vertical kana repeat mark upper half
		'\u2025', // two dot leader (NFKC "..")
		'\uFF0E': // fullwidth full stop
		return true
	}
	return false
}
