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
