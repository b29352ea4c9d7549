package bearer

import (
	"fmt"
	"net/http"
	"strings"
)

// Extract returns the token of the request's Authorization header,
// "Bearer" SP token68 (RFC 6750 §2.1, RFC 9110 §11.4), the scheme in any
// case. It returns ErrNoToken when there is no Authorization header or it
// names another scheme, and ErrMalformed for anything else that is not
// exactly one such header: two Authorization headers, whitespace around
// the value, more than one space, a token outside the token68 grammar.
// Nothing is trimmed or repaired: an ambiguous credential is refused, not
// guessed at. Tokens in the query or the body (RFC 6750 §2.2, §2.3) are
// not read.
func Extract(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", ErrNoToken
	case 1:
	default:
		return "", fmt.Errorf("%w: %d Authorization headers", ErrMalformed, len(vals))
	}
	v := vals[0]
	if v == "" {
		return "", fmt.Errorf("%w: empty Authorization header", ErrMalformed)
	}
	scheme, token, hasSpace := strings.Cut(v, " ")
	if !isToken(scheme) {
		return "", fmt.Errorf("%w: Authorization header does not start with a scheme", ErrMalformed)
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoToken
	}
	if !hasSpace || token == "" {
		return "", fmt.Errorf("%w: Bearer without a token", ErrMalformed)
	}
	if !isToken68(token) {
		return "", fmt.Errorf("%w: token is not token68 (RFC 9110 §11.2)", ErrMalformed)
	}
	return token, nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// isToken68 reports whether s is an RFC 9110 §11.2 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~' && c != '+' && c != '/' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
