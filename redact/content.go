package redact

import (
	"mime"
	"strings"
)

// Transformable reports whether a response of this Content-Type is one
// this package can transform: application/json or any type/subtype+json
// (RFC 6839 §3.1, e.g. application/problem+json), with parameters, but a
// charset only if it is utf-8 (RFC 8259 §8.1: JSON exchanged between
// systems is UTF-8). A response that a decision wants redacted or
// filtered and that is not transformable must be refused, not passed on:
// its fields cannot be found.
func Transformable(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || typ == "*" {
		return false
	}
	if !(mt == "application/json" || len(sub) > len("+json") && strings.HasSuffix(sub, "+json")) {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	return true
}
