package proxy

import (
	"net/url"
	"strings"
)

// isOverrideParam reports whether a form or query parameter name, as
// received (possibly percent-encoded), is read as "_method" by some
// framework: names are compared decoded, without regard to case, with PHP's
// folding of leading spaces, "." and " " to "_", and without an array
// suffix ("_method[]", "_method[x]").
func isOverrideParam(raw string) bool {
	if !strings.ContainsAny(raw, "%+") && !containsFold(raw, "method") {
		return false // the fast path: most names are plainly something else
	}
	name, err := url.QueryUnescape(raw)
	if err != nil {
		// A name no framework can decode overrides nothing; the query
		// itself was validated, so this is a body that fails later.
		return false
	}
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	name = strings.NewReplacer(".", "_", " ", "_").Replace(name)
	return strings.EqualFold(name, "_method")
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}

// overrideValues returns the values of every method-override parameter in
// an application/x-www-form-urlencoded string (a query or a form body).
func overrideValues(form string) []string {
	var vals []string
	for form != "" {
		var pair string
		pair, form, _ = strings.Cut(form, "&")
		k, v, _ := strings.Cut(pair, "=")
		if !isOverrideParam(k) {
			continue
		}
		if uv, err := url.QueryUnescape(v); err == nil {
			v = uv
		}
		vals = append(vals, v)
	}
	return vals
}

// dropOverrideParams removes every method-override pair from a raw query,
// keeping the rest byte for byte.
func dropOverrideParams(q string) string {
	parts := strings.Split(q, "&")
	out := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if !isOverrideParam(k) {
			out = append(out, p)
		}
	}
	return strings.Join(out, "&")
}

// isFormType reports a urlencoded form body by a lenient reading of its
// Content-Type, as the laxest framework behind the gateway would read it:
// "application/x-www-form-urlencoded, text/plain" is a form to some.
func isFormType(ct string) bool {
	return containsFold(ct, "application/x-www-form-urlencoded")
}

// bodyKind classifies a request body by the laxest reading of its
// Content-Type, for the method-override checks.
type bodyKind uint8

const (
	bodyOther bodyKind = iota
	bodyForm
	bodyMultipart
	bodyJSON
)

func kindOf(ct string) bodyKind {
	switch {
	case isFormType(ct):
		return bodyForm
	case containsFold(ct, "multipart/"):
		return bodyMultipart
	case containsFold(ct, "json"):
		return bodyJSON
	}
	return bodyOther
}

// overrideGuard streams a multipart or JSON body and fails the read that
// would deliver a method-override field name ("_method" as a multipart
// field name or a JSON key, also in the spellings isOverrideParam folds and
// with a JSON \u005f escape). The upstream never receives the field: the
// forward fails and the client gets 400. Memory is a small carry-over
// window, whatever the body size.
type overrideGuard struct {
	r      interface{ Read([]byte) (int, error) }
	closer interface{ Close() error }
	tail   []byte
	err    error
}

const guardWindow = 32

func newOverrideGuard(body interface {
	Read([]byte) (int, error)
	Close() error
}) *overrideGuard {
	return &overrideGuard{r: body, closer: body}
}

func (g *overrideGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if n > 0 {
		window := append(g.tail, p[:n]...)
		if hasOverrideKey(window) {
			g.err = ErrOverride
			return 0, g.err
		}
		if len(window) > guardWindow {
			window = window[len(window)-guardWindow:]
		}
		g.tail = append(g.tail[:0], window...)
	}
	return n, err
}

func (g *overrideGuard) Close() error { return g.closer.Close() }

// hasOverrideKey looks for `<delim><prefix>method<end>` in b, without
// regard to case: delim is a quote or '=' (a multipart name= parameter or a
// JSON key), prefix one of the spellings frameworks fold to "_".
func hasOverrideKey(b []byte) bool {
	for i := 0; i+6 <= len(b); i++ {
		if !equalFoldASCII(b[i:i+6], "method") {
			continue
		}
		if i+6 < len(b) && !isKeyEnd(b[i+6]) {
			continue
		}
		for _, pre := range []string{"_", ".", " ", "+", "%5f", "%2e", "%20", "\\u005f"} {
			j := i - len(pre)
			if j < 1 || !equalFoldASCII(b[j:i], pre) {
				continue
			}
			if d := b[j-1]; d == '"' || d == '\'' || d == '=' {
				return true
			}
		}
	}
	return false
}

func isKeyEnd(c byte) bool {
	switch c {
	case '"', '\'', '[', '=', '\\', ';', '\r', '\n':
		return true
	}
	return false
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
