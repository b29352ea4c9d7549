package apikey

import (
	"errors"
	"fmt"
)

// Errors of Parse and Extract: the credential is not well-formed. Callers
// answer them like any other failed authentication.
var (
	// ErrMalformed means a presented key, or the header carrying it, does
	// not follow the grammar. Every more specific syntax error wraps it.
	ErrMalformed = errors.New("apikey: malformed credential")
	// ErrTooLong means the presented value is longer than MaxLen bytes; it
	// was refused before any other work.
	ErrTooLong = fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxLen)
	// ErrChecksum means the key has the right shape but its checksum does
	// not match: a typo, a truncated copy or a made-up key.
	ErrChecksum = fmt.Errorf("%w: checksum does not match", ErrMalformed)
	// ErrNoCredential means none of the configured sources carries a key.
	ErrNoCredential = errors.New("apikey: no API key in the request")
	// ErrAmbiguous means the request carries more than one credential: a
	// source header sent twice (in any spelling), two sources at once, or
	// Basic credentials naming two different keys. Which one counts must
	// not be up to the client, so none does.
	ErrAmbiguous = errors.New("apikey: more than one API key in the request")
)

// Errors of Verify for a well-formed key. They come wrapped in a
// *VerifyError naming the key id; callers tell them apart with errors.Is
// for logs and audit but must answer the client identically.
var (
	// ErrUnknown means no key with the presented id exists (never did, or
	// was deleted).
	ErrUnknown = errors.New("apikey: unknown key")
	// ErrMismatch means the secret is not the key's current one, nor its
	// previous one within the rotation overlap.
	ErrMismatch = errors.New("apikey: wrong secret")
	// ErrSuperseded means the secret is the key's previous one, presented
	// after its rotation overlap ended. It wraps ErrMismatch; audit may
	// want to flag a client still using a rotated-out secret.
	ErrSuperseded = fmt.Errorf("%w: secret replaced by rotation", ErrMismatch)
	// ErrExpired means the key passed its Expires.
	ErrExpired = errors.New("apikey: expired")
	// ErrDisabled means the key was revoked.
	ErrDisabled = errors.New("apikey: disabled")
)

// Errors of the stores and the Manager's administrative methods.
var (
	// ErrNotFound means the store has no record under the id.
	ErrNotFound = errors.New("apikey: no such key")
	// ErrExists means Create found a record under the id already.
	ErrExists = errors.New("apikey: key exists")
	// ErrConflict means the record was written by someone else since the
	// caller read it (optimistic version check).
	ErrConflict = errors.New("apikey: version conflict")
	// ErrUnavailable wraps every failure to reach, read or write the store.
	// Callers fail closed on it: the request is not authenticated.
	ErrUnavailable = errors.New("apikey: store unavailable")
	// ErrInvalid means a Spec or an argument of the Manager is not valid.
	ErrInvalid = errors.New("apikey: invalid argument")
)

// VerifyError is what Verify returns for a well-formed key it refuses. It
// names the presented key id (never the secret) for the audit log; Err is
// ErrUnknown, ErrMismatch, ErrSuperseded, ErrExpired or ErrDisabled.
type VerifyError struct {
	// ID is the key id the client presented.
	ID  string
	Err error
}

func (e *VerifyError) Error() string { return e.Err.Error() + " (key " + e.ID + ")" }

// Unwrap returns Err.
func (e *VerifyError) Unwrap() error { return e.Err }
