// Package fielderr owns the error type that configuration validation uses to
// name the key that is wrong. Each package's Config.Validate returns these
// with paths relative to its own Config; the config package re-roots them and
// turns paths into file positions.
package fielderr

import (
	"errors"
	"fmt"
	"strings"
)

// Error is a problem with one configuration key.
type Error struct {
	// Path is the key path, e.g. "routes[2].path" ("" for the root).
	Path string
	// Msg says what is wrong and what is allowed.
	Msg string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// New returns an *Error for path.
func New(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Prefix re-roots every *Error in err (including errors joined with
// errors.Join) under prefix; other errors become an *Error at prefix.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range Flatten(err) {
		var fe *Error
		if errors.As(e, &fe) {
			out = append(out, &Error{Path: Join(prefix, fe.Path), Msg: fe.Msg})
			continue
		}
		out = append(out, &Error{Path: prefix, Msg: e.Error()})
	}
	return errors.Join(out...)
}

// Join joins key path parts: Join("tls", "acme.email") is "tls.acme.email",
// Join("routes", "[2].path") is "routes[2].path".
func Join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case strings.HasPrefix(b, "["):
		return a + b
	}
	return a + "." + b
}

// Flatten lists the leaves of errors joined with errors.Join.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}
