package session

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// storeGrace is how long a store keeps an entry past its deadline. Load
// can then tell "expired" from "never existed", and replicas whose clocks
// differ slightly from the writer's still agree on the deadline, which the
// Manager checks itself with its clock.
const storeGrace = time.Minute

// Manager is the session API of the gateway's auth stage: it reads the
// session cookie of a request, starts, saves and ends sessions, revokes
// them and serialises token refreshes. It is safe for concurrent use.
type Manager struct {
	name          string
	idle          time.Duration
	absolute      time.Duration
	refreshBefore time.Duration
	lockTTL       time.Duration

	store Store
	ring  *keyRing
	codec *CookieCodec
	now   func() time.Time
	log   *slog.Logger

	flight  singleflight.Group
	decoded *decodedCache
	bufs    sync.Pool // of *writeBuf
}

// New returns a Manager for cfg (Defaults applied, secrets resolved) on
// store. A nil log discards; a nil now is time.Now. It derives the keys and
// touches nothing else.
func New(cfg Config, store Store, log *slog.Logger, now func() time.Time) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("session: New needs a store")
	}
	ring, err := newKeyRingFromRefs(cfg.Keys)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Manager{
		name:          cfg.CookieName,
		idle:          cfg.IdleTimeout,
		absolute:      cfg.AbsoluteTimeout,
		refreshBefore: cfg.RefreshBefore,
		lockTTL:       cfg.RefreshLockTTL,
		store:         store,
		ring:          ring,
		codec:         &CookieCodec{ring: ring},
		now:           now,
		log:           log,
		decoded:       newDecodedCache(cfg.CacheEntries),
	}, nil
}

// CacheStats reports what the cache of decoded records did (see
// Config.CacheEntries), for metrics.
func (m *Manager) CacheStats() CacheStats { return m.decoded.stats() }

// Codec returns the manager's cookie codec.
func (m *Manager) Codec() *CookieCodec { return m.codec }

// IdleTimeout is the idle timeout this manager enforces.
func (m *Manager) IdleTimeout() time.Duration { return m.idle }

// CookieName returns the name of the session cookie.
func (m *Manager) CookieName() string { return m.name }

// Load returns the session the request's cookie names. Only a cookie with
// exactly the configured name counts. It fails with ErrNoSession (no
// cookie, or no such session), ErrAmbiguousCookie (the cookie twice),
// ErrInvalidCookie (not issued by this gateway with a key in the ring),
// ErrExpired (idle or absolute deadline passed, by the manager's clock), or
// an error wrapping ErrUnavailable: fail closed on all of them.
func (m *Manager) Load(r *http.Request) (*Record, error) {
	v, n := cookieValues(r, m.name)
	switch {
	case n == 0:
		return nil, ErrNoSession
	case n > 1:
		// Two cookies of one name cannot both be ours; a browser sends this
		// when a cookie was planted beside the real one. Which one the
		// server picks must not be up to the attacker, so it picks neither.
		m.log.LogAttrs(r.Context(), slog.LevelWarn, "session: ambiguous session cookie", slog.String("cookie", m.name), slog.Int("count", n))
		return nil, ErrAmbiguousCookie
	}
	id, err := m.codec.Decode(v)
	if err != nil {
		return nil, err
	}
	return m.get(r.Context(), id)
}

// get reads, opens and checks the session id names.
func (m *Manager) get(ctx context.Context, id ID) (*Record, error) {
	key, ok := m.ring.storageKey(id)
	if !ok {
		return nil, ErrInvalidCookie
	}
	e, err := m.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	rec, err := m.openCached(e)
	if err != nil {
		if errors.Is(err, errUnknownKey) {
			return nil, fmt.Errorf("%w: %w", ErrNoSession, err)
		}
		// A record that does not authenticate under its own key was
		// altered in the store, or moved from another session.
		m.log.LogAttrs(ctx, slog.LevelError, "session: stored session does not authenticate", slog.String("id_hash", key), slog.Any("err", err))
		return nil, fmt.Errorf("%w: %w", ErrNoSession, err)
	}
	rec.id = id
	now := m.now()
	if m.expired(rec, now) {
		if err := m.store.Delete(ctx, key); err != nil {
			m.log.LogAttrs(ctx, slog.LevelWarn, "session: deleting expired session", slog.String("id_hash", key), slog.Any("err", err))
		}
		return nil, ErrExpired
	}
	return rec, nil
}

// expired reports whether rec has passed its deadlines, or those this
// manager's configuration sets: lowering idle_timeout or absolute_timeout
// takes effect at once on sessions written under longer ones (by this
// replica before a restart, or by another replica).
func (m *Manager) expired(rec *Record, now time.Time) bool {
	return !now.Before(rec.Expires) || !now.Before(rec.IdleExpires) ||
		!now.Before(rec.Created.Add(m.absolute)) || !now.Before(rec.LastSeen.Add(m.idle))
}

// openCached is open, memoised (see decodedCache).
func (m *Manager) openCached(e Entry) (*Record, error) {
	if rec := m.decoded.get(e); rec != nil {
		return rec, nil
	}
	rec, err := m.open(e)
	if err != nil {
		return nil, err
	}
	m.decoded.put(e, rec.Clone())
	return rec, nil
}

func (m *Manager) open(e Entry) (*Record, error) {
	pt, err := m.ring.open(e.Key, e.Version, e.Data)
	if err != nil {
		return nil, err
	}
	rec := &Record{}
	if err := json.Unmarshal(pt, rec); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	rec.key = e.Key
	rec.Version = e.Version
	return rec, nil
}

// writeBuf holds one write's encoded and sealed record. Stores copy what
// they keep (see the conformance suite), so both are reused for the next
// write once the store call and the cache have looked at the entry: a
// write then allocates nothing of the record's size but the store's copy.
type writeBuf struct {
	plain  bytes.Buffer
	sealed []byte
}

// maxPooledRecord bounds the buffers kept for reuse; a rare huge record
// is left to the collector.
const maxPooledRecord = 64 << 10

// entry seals rec for the store, in a buffer of m.bufs; the caller gives
// it back with release once the store and the cache are done with it.
func (m *Manager) entry(rec *Record) (Entry, *writeBuf, error) {
	wb, _ := m.bufs.Get().(*writeBuf)
	if wb == nil {
		wb = &writeBuf{}
	}
	// Encoder.Encode writes what json.Marshal returns, then a newline.
	if err := json.NewEncoder(&wb.plain).Encode(rec); err != nil {
		m.release(wb)
		return Entry{}, nil, fmt.Errorf("session: encoding record: %w", err)
	}
	pt := bytes.TrimSuffix(wb.plain.Bytes(), []byte("\n"))
	wb.sealed = m.ring.sealTo(wb.sealed, rec.key, rec.Version, pt)
	e := Entry{
		Key:     rec.key,
		Version: rec.Version,
		Data:    wb.sealed,
		Expires: rec.IdleExpires.Add(storeGrace),
	}
	if k := m.ring.byID(rec.id.kid); k != nil && rec.UserID != "" {
		e.UserKey = k.userKey(rec.UserID)
	}
	return e, wb, nil
}

// release wipes the plaintext of wb and keeps wb for the next write.
func (m *Manager) release(wb *writeBuf) {
	clear(wb.plain.Bytes())
	wb.plain.Reset()
	if wb.plain.Cap() > maxPooledRecord || cap(wb.sealed) > maxPooledRecord {
		return
	}
	m.bufs.Put(wb)
}

// Start stores rec as a new session under a fresh id, sets the session
// cookie on w, and deletes the session oldID names (if any). Call it at
// login and whenever the session's privileges change (step-up, role
// change): a session id is never reused across an authentication, so an id
// an attacker planted or learnt before it is worthless after it (session
// fixation, OWASP Session Management Cheat Sheet "Renew the Session ID
// After Any Privilege Level Change").
//
// A rec with zero Created starts a new lifetime (Created now, Expires after
// the absolute timeout); a rec carried over from Load keeps its Created
// and Expires (never more than the absolute timeout from now). On success rec holds the new id, times and version 1.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, rec *Record, oldID ID) error {
	now := m.now()
	if !oldID.IsZero() {
		if oldKey, ok := m.ring.storageKey(oldID); ok {
			m.decoded.drop(oldKey)
			if err := m.store.Delete(ctx, oldKey); err != nil {
				return err
			}
		}
	}
	next := rec.Clone()
	next.id = newID(m.ring.active().id)
	next.key, _ = m.ring.storageKey(next.id)
	if next.Created.IsZero() {
		next.Created = now
	}
	if next.Expires.IsZero() {
		next.Expires = next.Created.Add(m.absolute)
	}
	if end := now.Add(m.absolute); next.Expires.After(end) {
		next.Expires = end
	}
	if !now.Before(next.Expires) {
		return ErrExpired
	}
	next.LastSeen = now
	next.IdleExpires = minTime(now.Add(m.idle), next.Expires)
	next.Version = 1
	e, wb, err := m.entry(next)
	if err != nil {
		return err
	}
	err = m.store.Create(ctx, e)
	if err == nil {
		m.decoded.put(e, next.Clone())
	}
	m.release(wb)
	if err != nil {
		return err
	}
	*rec = *next
	http.SetCookie(w, sessionCookie(m.name, m.codec.Encode(rec.id), rec.Expires.Sub(now)))
	// A response that sets a session cookie must not be stored by a shared
	// cache and replayed to someone else (RFC 9111 §5.2.2.5).
	w.Header().Set("Cache-Control", "no-store")
	return nil
}

// Save writes rec back and extends its idle deadline (never past the
// absolute one). It fails with ErrExpired after a deadline, ErrNoSession
// when the session was ended or revoked meanwhile, and ErrConflict when
// another request wrote the session since rec was loaded; for a plain idle
// extension a conflict may be ignored, as that other write extended it too.
// On success rec holds the new times and version.
func (m *Manager) Save(ctx context.Context, rec *Record) error {
	if rec.key == "" {
		return errors.New("session: Save of a record that was not started or loaded")
	}
	now := m.now()
	if m.expired(rec, now) {
		return ErrExpired
	}
	next := rec.Clone()
	next.LastSeen = now
	next.Expires = minTime(next.Expires, next.Created.Add(m.absolute))
	next.IdleExpires = minTime(now.Add(m.idle), next.Expires)
	if err := m.put(ctx, next, rec.Version); err != nil {
		return err
	}
	*rec = *next
	return nil
}

// put writes next as the version after expect; next.Version is set.
func (m *Manager) put(ctx context.Context, next *Record, expect uint64) error {
	next.Version = expect + 1
	e, wb, err := m.entry(next)
	if err != nil {
		return err
	}
	err = m.store.Update(ctx, e, expect)
	if err == nil {
		m.decoded.put(e, next.Clone())
	}
	m.release(wb)
	if errors.Is(err, ErrNotFound) {
		return ErrNoSession
	}
	return err
}

// End deletes the session id names and expires the cookie on w (logout).
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, id ID) error {
	http.SetCookie(w, sessionCookie(m.name, "", 0))
	if key, ok := m.ring.storageKey(id); ok && !id.IsZero() {
		m.decoded.drop(key)
		return m.store.Delete(ctx, key)
	}
	return nil
}

// RevokeSession deletes the session whose hash (Record.Hash, Summary.Hash)
// is given, for the admin API.
func (m *Manager) RevokeSession(ctx context.Context, hash string) error {
	m.decoded.drop(hash)
	return m.store.Delete(ctx, hash)
}

// RevokeUser deletes every session of userID and returns how many there
// were; the user's next request has no session.
func (m *Manager) RevokeUser(ctx context.Context, userID string) (int, error) {
	m.decoded.dropUser(userID)
	total := 0
	// Sessions are indexed under the key that issued them; any ring key
	// may have.
	for _, k := range m.ring.keys {
		n, err := m.store.DeleteUser(ctx, k.userKey(userID))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Revoked drops what the manager remembers of revoked sessions (decoded
// records, see decodedCache). Wire it to the store's OnRevoke, so that the
// plaintext of a session revoked on another replica leaves this one's
// memory within milliseconds; correctness does not depend on it, as every
// Load asks the store.
func (m *Manager) Revoked(r Revocation) {
	if r.All {
		m.decoded.clear()
		return
	}
	for _, k := range r.Keys {
		m.decoded.drop(k)
	}
}

// RevokeAll deletes every session and returns how many there were.
func (m *Manager) RevokeAll(ctx context.Context) (int, error) {
	m.decoded.clear()
	return m.store.DeleteAll(ctx)
}

// List describes every live session, oldest first. Sessions sealed under
// a key no longer in the ring are listed as Unreadable.
func (m *Manager) List(ctx context.Context) ([]Summary, error) {
	entries, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(entries))
	for _, e := range entries {
		rec, err := m.open(e)
		if err != nil {
			out = append(out, Summary{Hash: e.Key, IdleExpires: e.Expires.Add(-storeGrace), Unreadable: true})
			continue
		}
		out = append(out, Summary{
			Hash:        e.Key,
			UserID:      rec.UserID,
			Created:     rec.Created,
			LastSeen:    rec.LastSeen,
			IdleExpires: rec.IdleExpires,
			Expires:     rec.Expires,
		})
	}
	slices.SortFunc(out, func(a, b Summary) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Hash, b.Hash))
	})
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
