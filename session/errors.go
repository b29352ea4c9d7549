package session

import "errors"

// Errors of the Manager. Callers branch on them with errors.Is.
var (
	// ErrNoSession means the request carries no session cookie, or the
	// session it names does not exist (ended, revoked, never existed, or
	// sealed under a key that is no longer in the ring).
	ErrNoSession = errors.New("session: no session")
	// ErrExpired means the session passed its idle or absolute deadline.
	ErrExpired = errors.New("session: expired")
	// ErrInvalidCookie means a cookie with the session cookie's name was
	// present but is not one this gateway issued with a key still in the
	// ring: forged, truncated, tampered with, or from a removed key.
	ErrInvalidCookie = errors.New("session: invalid session cookie")
	// ErrAmbiguousCookie means the request carried the session cookie more
	// than once; it is treated as having no session.
	ErrAmbiguousCookie = errors.New("session: session cookie sent more than once")
)

// Errors of the stores.
var (
	// ErrNotFound means the store has no live entry under the key.
	ErrNotFound = errors.New("session: entry not found")
	// ErrExists means Create found an entry under the key already.
	ErrExists = errors.New("session: entry exists")
	// ErrConflict means the entry was written by someone else since the
	// caller read it (optimistic version check).
	ErrConflict = errors.New("session: version conflict")
	// ErrLocked means another holder has the lock.
	ErrLocked = errors.New("session: locked")
	// ErrUnavailable wraps every failure to reach or use the store. Callers
	// fail closed on it: the request is not authenticated by this session.
	ErrUnavailable = errors.New("session: store unavailable")
)
