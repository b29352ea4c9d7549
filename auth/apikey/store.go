package apikey

import (
	"context"
	"time"
)

// Store keeps API key records. It is what the Manager needs of a store and
// no more; FileStore and RedisStore implement it and pass the same
// conformance suite.
//
// Every method is safe for concurrent use. Create and Update refuse a
// record without a valid id and hash (ErrInvalid); other errors than
// ErrNotFound, ErrExists, ErrConflict and ErrInvalid wrap ErrUnavailable.
type Store interface {
	// Get returns the record under id, or ErrNotFound. The caller must
	// not modify it. Writes through the same store are visible at once;
	// FileStore may lag a write by another process by a fraction of a
	// second (see FileStore), RedisStore never lags.
	Get(ctx context.Context, id string) (*Record, error)
	// Create stores r under r.ID if no record is there (ErrExists).
	Create(ctx context.Context, r *Record) error
	// Update replaces the record under r.ID with r if the stored version
	// is still expect: ErrConflict if it is not, ErrNotFound if there is
	// no record. The stored LastUsed is kept if it is later than r's.
	Update(ctx context.Context, r *Record, expect uint64) error
	// Delete removes the record under id; deleting nothing is not an
	// error.
	Delete(ctx context.Context, id string) error
	// List returns every record, in no particular order. The caller must
	// not modify them.
	List(ctx context.Context) ([]*Record, error)
	// MarkUsed moves the LastUsed of each record named in used forward to
	// the time given, in one write. It leaves Version alone, never moves
	// LastUsed backwards and skips ids that have no record.
	MarkUsed(ctx context.Context, used map[string]time.Time) error
}
