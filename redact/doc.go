// Package redact owns stage 9 of the gateway, the response transform: it
// removes, masks, hashes or nulls the members of a JSON response that a
// policy decision's redact rules select, and drops the rows (or refuses
// the record) that its filters do not keep, as the body streams through.
//
// A Program is compiled once from a decision's rules and filters
// (Compile); it is immutable and can run any number of transforms at
// once: Program.Transform copies a body, Program.NewWriter is a writer
// the body is written into, Program.NewReader wraps a response body for
// httputil.ReverseProxy's ModifyResponse, where Reader.Prefetch turns
// an early refusal into a clean error response. Transformable says which
// Content-Types it applies to; Config holds the deployment's settings.
//
// It fails closed: a body that is not exactly one well-formed JSON text
// in UTF-8, that exceeds a limit, whose record a filter refuses or whose
// filter finds nothing to check is an error, the output not yet passed
// on is discarded, and the caller must not complete the response. What
// was passed on before the error is always redacted and filtered; nothing
// of a refused record, and nothing at all of a body whose filter finds
// nothing to check, is ever passed on.
//
// The scanner is written here rather than taken from a library on
// purpose: its speed is the point. It works on bytes, keeps only a stack
// of open containers and the token in hand, compares member names as
// bytes (decoding only names with a backslash) against an automaton
// built from all paths at once, and decodes only the values a rule or a
// filter needs. Memory is bounded by Options (nesting depth, token size,
// output held for a filter), never by the size of the body.
//
// It does not decide what to redact (package policy does), does not pick
// the HTTP status of a refusal or decompress bodies (the proxy's part),
// and transforms only JSON: a response of another type that a decision
// wants redacted must be refused by the caller. docs/redaction.md
// documents the path syntax, the actions, the filters and every refusal.
package redact
