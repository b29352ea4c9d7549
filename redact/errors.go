package redact

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinels a caller branches on with errors.Is. Every error a transform
// returns matches exactly one of them (or is ErrClosed, or the source's
// or the destination's own error), and every one of them means the same
// thing to the caller: the response must not be completed. The status each
// becomes is in docs/redaction.md's table of refusals.
var (
	// ErrMalformed: the body is not one well-formed JSON text (RFC 8259):
	// a syntax error, a truncated document, bytes after the document,
	// invalid UTF-8 or a control character in a string. Its answer is
	// 502: the upstream sent something that cannot be checked.
	ErrMalformed = errors.New("redact: malformed JSON")
	// ErrLimit: the body exceeds a limit of Options (nesting depth, the
	// size of one token, the output held back while a row or record is
	// being decided). Its answer is 502.
	ErrLimit = errors.New("redact: limit exceeded")
	// ErrRecordRefused: a filter's path selected an object (a single
	// record, e.g. "$") whose fields do not all equal the filter's
	// keep_where values. Its answer is 404, as if the record did not
	// exist, so that a caller cannot learn which ids exist.
	ErrRecordRefused = errors.New("redact: record refused by a filter")
	// ErrFilterTarget: a filter could not be checked: its path selected
	// nothing (see docs/redaction.md for paths with [*] or an index), or
	// selected a value that is neither an array nor an object. The
	// response would otherwise pass unfiltered; its answer is 502.
	ErrFilterTarget = errors.New("redact: filter target missing or not an array or object")
)

// SyntaxError is an ErrMalformed at a byte offset of the body.
type SyntaxError struct {
	// Offset counts bytes from the start of the body (a byte order mark
	// included).
	Offset int64
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "redact: malformed JSON at offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Msg
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrMalformed }

// LimitError is an ErrLimit: which limit, its value and where in the body
// it was exceeded.
type LimitError struct {
	// Limit names the Options field: MaxDepth, MaxTokenBytes or
	// MaxHeldBytes.
	Limit  string
	Value  int
	Offset int64
	// Detail says what was being held or scanned, when it helps.
	Detail string
}

func (e *LimitError) Error() string {
	s := fmt.Sprintf("redact: %s %d exceeded at offset %d", e.Limit, e.Value, e.Offset)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// FilterError is an ErrRecordRefused or an ErrFilterTarget naming the
// filter, by its index and path in the list given to Compile.
type FilterError struct {
	Index int
	Path  string
	// Err is ErrRecordRefused or ErrFilterTarget.
	Err error
	// Msg says why, for the log; never for the client.
	Msg string
}

func (e *FilterError) Error() string {
	return fmt.Sprintf("%v: filter[%d] %s: %s", e.Err, e.Index, e.Path, e.Msg)
}

func (e *FilterError) Unwrap() error { return e.Err }

// PathError is a JSONPath that Compile cannot parse or does not support,
// with the byte position in Path where the problem is.
type PathError struct {
	Path string
	Pos  int
	Msg  string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("path %q: at %d: %s", e.Path, e.Pos, e.Msg)
}
