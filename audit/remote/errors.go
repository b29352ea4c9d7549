package remote

import (
	"errors"
	"fmt"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("audit sink closed")

// Reasons an EventError gives.
var (
	// ErrEventTooLarge: the event alone is bigger than the sink's limit
	// (max_message_bytes for syslog, max_batch_bytes for HTTP).
	ErrEventTooLarge = errors.New("event larger than the sink's limit")
	// ErrInvalidEvent: the event is not one JSON object.
	ErrInvalidEvent = errors.New("event is not a JSON object")
)

// EventError reports an event that this sink can never deliver, however
// often the batch is retried. Write checks every event before it sends
// anything, so when it returns an EventError nothing of the batch has been
// sent: the caller can deliver batch[:Index] on its own and set the event
// aside (a dead-letter file) instead of retrying the batch forever.
type EventError struct {
	// Index is the position of the event in the batch.
	Index int
	// Size is the event's size in bytes as the sink would send it.
	Size int
	// Err is ErrEventTooLarge or ErrInvalidEvent, possibly wrapped.
	Err error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("audit event %d of the batch (%d bytes): %v", e.Index, e.Size, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// RetryAfterError is implemented by errors that carry the receiver's own
// word on when to try again (HTTP Retry-After, RFC 9110 §10.2.3). A caller
// with its own backoff should wait at least RetryAfter() when it is positive;
// zero means the receiver did not say. Find it with errors.As.
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// StatusError is a non-2xx answer of an HTTP collector. Every StatusError is
// worth retrying as far as the sink knows, but a 4xx other than 408 and 429
// is almost always a configuration problem (a wrong URL, token or body
// format) that retrying will not cure, and so is a 3xx (redirects are not
// followed, so that tokens never go to another host); Config reports which.
type StatusError struct {
	// URL is the collector's scheme://host, without path or query.
	URL string
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the response body, for the log.
	Body string
	// Retry is the parsed Retry-After header; zero when absent or invalid.
	Retry time.Duration
}

var _ RetryAfterError = (*StatusError)(nil)

func (e *StatusError) Error() string {
	s := fmt.Sprintf("audit collector %s answered %d", e.URL, e.StatusCode)
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.Retry > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.Retry)
	}
	return s
}

// RetryAfter returns the wait the collector asked for, or zero.
func (e *StatusError) RetryAfter() time.Duration { return e.Retry }

// Config reports whether the status points at this sink's configuration
// rather than at the collector's health: a 3xx, or a 4xx other than 408
// and 429.
func (e *StatusError) Config() bool {
	return e.StatusCode >= 300 && e.StatusCode < 500 && e.StatusCode != 408 && e.StatusCode != 429
}
