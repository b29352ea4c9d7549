package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// Memory exhaustion through the decoded-record cache: an attacker who
// scripts sign-ins and uses each session cannot make a replica keep more
// decoded records than cache_entries, and real users' sessions still load.
func TestCacheBoundUnderSessionFlood(t *testing.T) {
	clock := newClock()
	cfg := testConfig(testKey("a"))
	cfg.CacheEntries = 50
	m, err := New(cfg, NewMemoryStore(MemoryOptions{Now: clock.Now}), nil, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	alice := startSession(t, m, aliceRecord(clock.Now()), ID{})
	aliceReq := requestWithCookies("__Host-crmgate=" + alice)
	for i := range 2000 {
		cookie := startSession(t, m, &Record{UserID: "mallory"}, ID{})
		for range 2 {
			if _, err := m.Load(requestWithCookies("__Host-crmgate=" + cookie)); err != nil {
				t.Fatalf("Load(attacker session %d) = %v", i, err)
			}
		}
		if n := m.decoded.len(); n > cfg.CacheEntries {
			t.Fatalf("after %d attacker sessions the cache holds %d records, bound %d", i+1, n, cfg.CacheEntries)
		}
		if i%100 == 0 {
			if rec, err := m.Load(aliceReq); err != nil || rec.UserID != "alice" {
				t.Fatalf("Load(alice) during the flood = %v, %v", rec, err)
			}
		}
	}
	s := m.CacheStats()
	if s.Entries > cfg.CacheEntries || s.Capacity != cfg.CacheEntries || s.Evictions == 0 || s.Hits == 0 {
		t.Errorf("CacheStats = %+v, want at most %d entries, evictions and hits", s, cfg.CacheEntries)
	}
	t.Logf("after the flood: %+v", s)
}

// TestCacheNeverOutlivesStoredVersion pins that a replica's decoded copy
// of a session is never used once the stored entry has changed on another
// replica, even when the revocation message never reaches it (pub/sub is
// not wired here): every Load asks Redis, and the copy only matches the
// exact entry it was opened from.
func TestCacheNeverOutlivesStoredVersion(t *testing.T) {
	srv := startRedis(t)
	clock := newClock()
	ctx := context.Background()
	replica := func(keys ...[]byte) *Manager {
		return newTestManager(t, NewRedisStore(srv.Client(t), RedisOptions{Prefix: "cache:", Now: clock.Now}), clock, keys...)
	}
	a, b := replica(testKey("a")), replica(testKey("a"))
	rotatedA := replica(testKey("b"), testKey("a"))

	// cachedOnB starts a session on a and has b load (and cache) it.
	cachedOnB := func(t *testing.T) (*Record, func() (*Record, error)) {
		t.Helper()
		rec := aliceRecord(clock.Now())
		r := requestWithCookies("__Host-crmgate=" + startSession(t, a, rec, ID{}))
		for range 2 {
			if _, err := b.Load(r); err != nil {
				t.Fatalf("replica b: Load = %v, want the session replica a started", err)
			}
		}
		if !b.decoded.has(rec.Hash()) {
			t.Fatal("replica b did not cache the session")
		}
		return rec, func() (*Record, error) { return b.Load(r) }
	}

	for _, tc := range []struct {
		name    string
		change  func(t *testing.T, rec *Record)
		wantErr error
	}{
		{"End", func(t *testing.T, rec *Record) {
			if err := a.End(ctx, httptest.NewRecorder(), rec.ID()); err != nil {
				t.Fatal(err)
			}
		}, ErrNoSession},
		{"RevokeSession", func(t *testing.T, rec *Record) {
			if err := a.RevokeSession(ctx, rec.Hash()); err != nil {
				t.Fatal(err)
			}
		}, ErrNoSession},
		{"RevokeUser", func(t *testing.T, rec *Record) {
			if _, err := a.RevokeUser(ctx, rec.UserID); err != nil {
				t.Fatal(err)
			}
		}, ErrNoSession},
		{"RevokeAll", func(t *testing.T, rec *Record) {
			if _, err := a.RevokeAll(ctx); err != nil {
				t.Fatal(err)
			}
		}, ErrNoSession},
		{"idle timeout", func(t *testing.T, rec *Record) { clock.Advance(30 * time.Minute) }, ErrExpired},
		{"resealed under a key b does not have", func(t *testing.T, rec *Record) {
			cur, err := rotatedA.get(ctx, rec.ID())
			if err != nil {
				t.Fatal(err)
			}
			if err := rotatedA.Save(ctx, cur); err != nil {
				t.Fatal(err)
			}
		}, ErrNoSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, load := cachedOnB(t)
			tc.change(t, rec)
			got, err := load()
			if err == nil {
				t.Errorf("replica b: Load after %s on a = version %d of the session, want %v", tc.name, got.Version, tc.wantErr)
			} else if !errors.Is(err, tc.wantErr) {
				t.Errorf("replica b: Load after %s on a = %v, want %v", tc.name, err, tc.wantErr)
			}
		})
	}

	t.Run("Save with new roles", func(t *testing.T) {
		rec, load := cachedOnB(t)
		cur, err := a.get(ctx, rec.ID())
		if err != nil {
			t.Fatal(err)
		}
		cur.Roles = []string{"viewer"}
		cur.Tokens.RefreshToken = "rotated"
		if err := a.Save(ctx, cur); err != nil {
			t.Fatal(err)
		}
		got, err := load()
		if err != nil {
			t.Fatalf("replica b: Load after a's Save = %v", err)
		}
		if !slices.Equal(got.Roles, []string{"viewer"}) || got.Tokens.RefreshToken != "rotated" || got.Version != cur.Version {
			t.Errorf("replica b: Load after a's Save = roles %v, refresh token %.10q, version %d; want [viewer], rotated, %d", got.Roles, got.Tokens.RefreshToken, got.Version, cur.Version)
		}
	})
}
