package apikey

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MinPepperBytes is the least length of the pepper: it keys HMAC-SHA256,
// so it must carry 256 bits.
const MinPepperBytes = 32

// MaxOverlap is the longest a rotated-out secret keeps working. A longer
// overlap would make rotation after a leak meaningless.
const MaxOverlap = 7 * 24 * time.Hour

// LastUsedEvery is how often, at most, a key's LastUsed is written: it is
// a hint for finding unused keys, not an access log (the audit log is).
const LastUsedEvery = time.Minute

// hashLen is the length of a stored hash (HMAC-SHA256).
const hashLen = sha256.Size

// hashDomain separates these hashes from any other use of the pepper.
const hashDomain = "crmgate apikey v1\x00"

// updateAttempts bounds the optimistic retries of a read-modify-write.
const updateAttempts = 8

// markTimeout bounds one background LastUsed write.
const markTimeout = 10 * time.Second

// Manager creates, verifies, rotates and revokes API keys on a Store. It is
// safe for concurrent use.
//
// A key's stored hash is HMAC-SHA256 under the pepper of a domain string,
// the key id and the secret. The pepper is not stored with the keys, so a
// copy of the store (a backup, a Redis dump) gives an attacker nothing to
// test guesses against; binding the id means a hash copied onto another
// record does not move the key. Changing the pepper invalidates every key.
type Manager struct {
	store  Store
	pepper []byte
	now    func() time.Time
	log    *slog.Logger
	macs   sync.Pool // of *macState keyed with pepper
	dummy  []byte    // compared against for unknown ids

	usage usage
}

// New returns a Manager on store. pepper (at least MinPepperBytes) keys
// the hashes; every replica and the CLI must use the same. A nil now is
// time.Now, a nil log discards. It touches neither the store nor anything
// else.
func New(store Store, pepper []byte, now func() time.Time, log *slog.Logger) (*Manager, error) {
	if store == nil {
		return nil, errors.New("apikey: New needs a store")
	}
	if len(pepper) < MinPepperBytes {
		return nil, fmt.Errorf("apikey: the pepper is %d bytes, at least %d are required", len(pepper), MinPepperBytes)
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{store: store, pepper: slices.Clone(pepper), now: now, log: log, dummy: make([]byte, hashLen)}
	m.macs.New = func() any { return &macState{h: hmac.New(sha256.New, m.pepper)} }
	// A random dummy hash matches no secret.
	rand.Read(m.dummy)
	m.usage.init()
	return m, nil
}

// macState is a keyed HMAC with scratch space, pooled so that Verify
// allocates nothing for hashing.
type macState struct {
	h   hash.Hash
	msg []byte
	sum [hashLen]byte
}

// hash returns the stored hash of a key's id and secret, appended to dst.
func (m *Manager) hash(dst []byte, id, secret string) []byte {
	st := m.macs.Get().(*macState)
	st.msg = append(append(append(append(st.msg[:0], hashDomain...), id...), 0), secret...)
	st.h.Reset()
	st.h.Write(st.msg)
	dst = append(dst, st.h.Sum(st.sum[:0])...)
	m.macs.Put(st)
	return dst
}

// Verify checks a presented key and returns its record (without hashes).
//
// A value that is not a key fails with an error wrapping ErrMalformed and
// nothing is looked up. For a well-formed key it fails with a *VerifyError
// wrapping ErrUnknown, ErrMismatch (ErrSuperseded for a rotated-out secret
// after its overlap), ErrDisabled or ErrExpired, in that order of checks:
// a wrong secret never learns whether the key is disabled or expired. An
// unknown id costs the same HMAC and comparisons as a known one, so timing
// does not tell which ids exist. Store failures wrap ErrUnavailable. The
// caller must answer every failure the same way and fail closed.
//
// A successful Verify records the use (LastUsed) in the background, at
// most once per LastUsedEvery per key; that write never delays or fails
// the request.
func (m *Manager) Verify(ctx context.Context, presented string) (*Record, error) {
	id, secret, err := Parse(presented)
	if err != nil {
		return nil, err
	}
	rec, err := m.store.Get(ctx, id)
	known := err == nil
	if !known && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// The same work whether or not the id exists: one HMAC and two
	// constant-time comparisons.
	cur, prev := m.dummy, m.dummy
	if known {
		cur = rec.Hash
		if rec.Previous != nil {
			prev = rec.Previous.Hash
		}
	}
	var buf [hashLen]byte
	mac := m.hash(buf[:0], id, secret)
	matchCur := subtle.ConstantTimeCompare(mac, cur)
	matchPrev := subtle.ConstantTimeCompare(mac, prev)
	if !known {
		return nil, &VerifyError{ID: id, Err: ErrUnknown}
	}
	now := m.now()
	switch {
	case matchCur == 1:
	case matchPrev == 1 && rec.Previous != nil && now.Before(rec.Previous.Until):
	case matchPrev == 1 && rec.Previous != nil:
		return nil, &VerifyError{ID: id, Err: ErrSuperseded}
	default:
		return nil, &VerifyError{ID: id, Err: ErrMismatch}
	}
	switch {
	case rec.Disabled:
		return nil, &VerifyError{ID: id, Err: ErrDisabled}
	case rec.expired(now):
		return nil, &VerifyError{ID: id, Err: ErrExpired}
	}
	m.noteUse(rec, now)
	return rec.redacted(), nil
}

// Spec describes a key to create.
type Spec struct {
	// Name says what the key is for; required.
	Name string
	// Owner is who answers for the key; optional.
	Owner string
	// Scopes are what the policy may grant the key; optional.
	Scopes []string
	// Tier names the rate-limit tier; "" is the default tier.
	Tier string
	// TTL is how long the key works; 0 means until revoked.
	TTL time.Duration
}

// Limits of Spec fields: they end up in logs, policy input and listings.
const (
	maxNameLen  = 200
	maxScopes   = 100
	maxScopeLen = 100
)

func (s Spec) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...))
	}
	if s.Name == "" {
		bad("a name is required")
	}
	for _, f := range []struct{ name, v string }{{"name", s.Name}, {"owner", s.Owner}, {"tier", s.Tier}} {
		if len(f.v) > maxNameLen || !printable(f.v) {
			bad("%s must be at most %d printable characters", f.name, maxNameLen)
		}
	}
	if len(s.Scopes) > maxScopes {
		bad("at most %d scopes", maxScopes)
	}
	for _, sc := range s.Scopes {
		if sc == "" || len(sc) > maxScopeLen || !printable(sc) || strings.ContainsRune(sc, ' ') {
			bad("scope %q is not 1 to %d printable characters without spaces", sc, maxScopeLen)
		}
	}
	if s.TTL < 0 {
		bad("the TTL must not be negative")
	}
	return errors.Join(errs...)
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// Create makes a new key and returns its plaintext, to be shown to its
// owner once, and its record (without hashes).
func (m *Manager) Create(ctx context.Context, spec Spec) (string, *Record, error) {
	if err := spec.check(); err != nil {
		return "", nil, err
	}
	for attempt := 0; ; attempt++ {
		k, err := Generate()
		if err != nil {
			return "", nil, err
		}
		now := m.now()
		rec := &Record{
			ID:      k.ID(),
			Name:    spec.Name,
			Owner:   spec.Owner,
			Scopes:  slices.Clone(spec.Scopes),
			Tier:    spec.Tier,
			Created: now,
			Hash:    m.hash(nil, k.ID(), k.Secret()),
			Version: 1,
		}
		if spec.TTL > 0 {
			rec.Expires = now.Add(spec.TTL)
		}
		err = m.store.Create(ctx, rec)
		if errors.Is(err, ErrExists) && attempt < 3 {
			// 60 random bits: only a broken random source gets here twice.
			continue
		}
		if err != nil {
			return "", nil, err
		}
		m.log.LogAttrs(ctx, slog.LevelInfo, "apikey: created", slog.Any("key", rec))
		return k.Plaintext(), rec.redacted(), nil
	}
}

// Rotate gives key id a new secret and returns the new plaintext and the
// record. The old secret keeps working until now+overlap (0: it stops at
// once; at most MaxOverlap); a secret replaced by an earlier rotation stops
// at once. A disabled key is not rotated (ErrDisabled).
func (m *Manager) Rotate(ctx context.Context, id string, overlap time.Duration) (string, *Record, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", nil, fmt.Errorf("%w: the overlap must be between 0 and %s, got %s", ErrInvalid, MaxOverlap, overlap)
	}
	var plaintext string
	rec, err := m.update(ctx, id, func(r *Record, now time.Time) error {
		if r.Disabled {
			return ErrDisabled
		}
		k, err := Generate()
		if err != nil {
			return err
		}
		k.id = r.ID
		plaintext = k.Plaintext()
		r.Previous = nil
		if overlap > 0 {
			r.Previous = &Previous{Hash: r.Hash, Until: now.Add(overlap)}
		}
		r.Hash = m.hash(nil, k.ID(), k.Secret())
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "apikey: rotated", slog.Any("key", rec), slog.Duration("overlap", overlap))
	return plaintext, rec, nil
}

// Revoke disables key id at once, its previous secret included. The record
// stays for audit; revoking a disabled key does nothing.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	rec, err := m.update(ctx, id, func(r *Record, now time.Time) error {
		if r.Disabled {
			return errUnchanged
		}
		r.Disabled = true
		r.Previous = nil
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "apikey: revoked", slog.Any("key", rec))
	return nil
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("unchanged")

// update reads key id, applies change to a copy and writes it back with
// the optimistic version check, retrying on conflicts. It returns the
// written record without hashes.
func (m *Manager) update(ctx context.Context, id string, change func(*Record, time.Time) error) (*Record, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q is not a key id", ErrNotFound, id)
	}
	for attempt := 1; ; attempt++ {
		cur, err := m.store.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := change(next, m.now()); err != nil {
			return nil, err
		}
		next.Version = cur.Version + 1
		err = m.store.Update(ctx, next, cur.Version)
		if errors.Is(err, ErrConflict) && attempt < updateAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return next.redacted(), nil
	}
}

// Delete removes key id and its record; deleting an unknown key is
// ErrNotFound. Prefer Revoke, which keeps the record for audit.
func (m *Manager) Delete(ctx context.Context, id string) error {
	rec, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := m.store.Delete(ctx, id); err != nil {
		return err
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "apikey: deleted", slog.Any("key", rec))
	return nil
}

// Get returns key id's record without hashes, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*Record, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q is not a key id", ErrNotFound, id)
	}
	r, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.redacted(), nil
}

// List returns every key's record without hashes, oldest first.
func (m *Manager) List(ctx context.Context) ([]*Record, error) {
	recs, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, len(recs))
	for i, r := range recs {
		out[i] = r.redacted()
	}
	slices.SortFunc(out, func(a, b *Record) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Close writes out the pending LastUsed updates and waits for them.
func (m *Manager) Close() error {
	m.usage.wait()
	return nil
}
