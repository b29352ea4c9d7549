package session

import (
	"context"
	"time"
)

// Store keeps sealed session entries. It is what the Manager needs of a
// store and no more; MemoryStore and RedisStore implement it and pass the
// same conformance suite.
//
// Keys are opaque strings (the Manager uses hex HMACs). Every method is
// safe for concurrent use. Errors other than ErrNotFound, ErrExists,
// ErrConflict and ErrLocked wrap ErrUnavailable.
type Store interface {
	// Get returns the live entry under key, or ErrNotFound. An entry is
	// live until its Expires. Get reflects every write that completed
	// before it was called. The caller must not modify the Data it gets.
	Get(ctx context.Context, key string) (Entry, error)
	// Create stores e under e.Key if no live entry is there (ErrExists).
	// The store keeps a copy of e.Data: the caller may reuse it once
	// Create returns (as may it after Update).
	Create(ctx context.Context, e Entry) error
	// Update replaces the entry under e.Key with e if the stored version is
	// still expect: ErrConflict if it is not, ErrNotFound if there is no
	// live entry. An update never brings a deleted entry back.
	Update(ctx context.Context, e Entry, expect uint64) error
	// Delete removes the entry under key; deleting nothing is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteUser removes every entry whose UserKey is userKey and returns
	// how many it removed.
	DeleteUser(ctx context.Context, userKey string) (int, error)
	// DeleteAll removes every entry and returns how many it removed.
	DeleteAll(ctx context.Context) (int, error)
	// List returns every live entry, in no particular order.
	List(ctx context.Context) ([]Entry, error)

	Locker
}

// Locker is a lock with expiry, shared by every replica that shares the
// store. A holder that dies loses the lock after its ttl.
type Locker interface {
	// TryLock takes the lock name for ttl with token (a random value
	// proving ownership), or returns ErrLocked when another token holds it.
	TryLock(ctx context.Context, name, token string, ttl time.Duration) error
	// Unlock releases name if token still holds it; otherwise it does
	// nothing (the lock expired and someone else may hold it now).
	Unlock(ctx context.Context, name, token string) error
}

// Entry is one stored session.
type Entry struct {
	// Key is the storage key.
	Key string
	// UserKey is the per-user index key; "" indexes the entry under no user.
	UserKey string
	// Version is the entry's version; Create stores whatever the caller
	// sets (the Manager starts at 1).
	Version uint64
	// Data is the sealed record.
	Data []byte
	// Expires is when the store may forget the entry.
	Expires time.Time
}

// Revocation tells listeners which sessions were deleted: by Delete,
// DeleteUser or DeleteAll, on this replica or (with RedisStore) any other.
type Revocation struct {
	// Keys are the storage keys of the deleted sessions.
	Keys []string
	// All is set when every session was deleted; Keys is then empty.
	All bool
}
