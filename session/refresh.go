package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// RefreshFunc obtains new tokens for the current ones (an OIDC refresh
// token grant, RFC 6749 §6). It runs at most once per due session across
// all replicas that share the store.
type RefreshFunc func(ctx context.Context, current Tokens) (Tokens, error)

// refreshPoll is how often a request waiting for another replica's
// refresh looks at the session again.
const refreshPoll = 20 * time.Millisecond

// NeedsRefresh reports whether rec's access token expires within the
// configured refresh_before (or has expired). A zero expiry never does.
func (m *Manager) NeedsRefresh(rec *Record) bool {
	return !rec.Tokens.Expiry.IsZero() && !m.now().Before(rec.Tokens.Expiry.Add(-m.refreshBefore))
}

// Refresh returns rec with fresh tokens when they are due, calling fn at
// most once for the session however many requests, here or on other
// replicas, find them due at the same time. Requests in this process share
// one call (singleflight); across replicas the store's lock admits one
// refresher, and it looks at the session again after taking the lock, so a
// refresh another replica just finished is not repeated (lock, then check
// again). Refresh tokens are often single-use (OAuth 2.0 Security BCP,
// RFC 9700 §4.14.2): a second refresh with the same one would fail, or
// revoke the whole grant.
//
// When the tokens are not due it returns rec itself; otherwise a new
// Record, which the caller uses from then on. fn runs with a context that
// ends after refresh_lock_ttl and is not cancelled by the caller's request
// ending, as other requests may be waiting for its result.
func (m *Manager) Refresh(ctx context.Context, rec *Record, fn RefreshFunc) (*Record, error) {
	if !m.NeedsRefresh(rec) {
		return rec, nil
	}
	id := rec.id
	ch := m.flight.DoChan(rec.key, func() (any, error) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.lockTTL)
		defer cancel()
		return m.refresh(wctx, id, rec.key, fn)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		// Every caller gets its own copy to modify.
		return res.Val.(*Record).Clone(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *Manager) refresh(ctx context.Context, id ID, key string, fn RefreshFunc) (*Record, error) {
	lock := "refresh:" + key
	token := rand.Text()
	for {
		err := m.store.TryLock(ctx, lock, token, m.lockTTL)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) {
			return nil, err
		}
		// Another replica is refreshing: wait for its result.
		cur, err := m.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !m.NeedsRefresh(cur) {
			return cur, nil
		}
		t := time.NewTimer(refreshPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("session: waiting for another token refresh: %w", ctx.Err())
		}
	}
	defer func() {
		if err := m.store.Unlock(context.WithoutCancel(ctx), lock, token); err != nil {
			m.log.WarnContext(ctx, "session: releasing refresh lock", "id_hash", key, "err", err)
		}
	}()

	// Check again under the lock: the holder before us may have finished
	// between our last look and our taking the lock.
	cur, err := m.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !m.NeedsRefresh(cur) {
		return cur, nil
	}
	toks, err := fn(ctx, cur.Tokens)
	if err != nil {
		return nil, fmt.Errorf("session: token refresh: %w", err)
	}
	// Requests without the lock may save the session meanwhile (idle
	// extension); the new tokens are then put onto their version.
	for range 5 {
		next := cur.Clone()
		next.Tokens = toks
		err := m.put(ctx, next, cur.Version)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, err
		}
		if cur, err = m.get(ctx, id); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("session: saving refreshed tokens: %w", ErrConflict)
}
