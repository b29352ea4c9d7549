package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// storeHarness is one implementation under the conformance suite.
type storeHarness struct {
	store Store
	clock *fakeClock
	// realTime is set when the store also expires things by the real
	// clock (Redis lock TTLs), so the suite sleeps as it advances.
	realTime bool
	// revoked receives what OnRevoke reports.
	revoked chan Revocation
}

func (h *storeHarness) advance(d time.Duration) {
	h.clock.Advance(d)
	if h.realTime {
		time.Sleep(d)
	}
}

func TestMemoryStoreConformance(t *testing.T) {
	testStoreConformance(t, func(t *testing.T) *storeHarness {
		clock := newClock()
		revoked := make(chan Revocation, 100)
		s := NewMemoryStore(MemoryOptions{MaxEntries: 1000, Now: clock.Now, OnRevoke: func(r Revocation) { revoked <- r }})
		return &storeHarness{store: s, clock: clock, revoked: revoked}
	})
}

func TestRedisStoreConformance(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	n := 0
	testStoreConformance(t, func(t *testing.T) *storeHarness {
		clock := newClock()
		revoked := make(chan Revocation, 100)
		n++
		s := NewRedisStore(client, RedisOptions{Prefix: fmt.Sprintf("test%d:", n), Now: clock.Now, OnRevoke: func(r Revocation) { revoked <- r }})
		if err := s.Start(t.Context()); err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return &storeHarness{store: s, clock: clock, realTime: true, revoked: revoked}
	})
}

func entry(clock *fakeClock, key, user string, version uint64) Entry {
	return Entry{Key: key, UserKey: user, Version: version, Data: []byte("sealed:" + key + fmt.Sprint(version)), Expires: clock.Now().Add(time.Hour)}
}

// testStoreConformance is the one suite every Store passes.
func testStoreConformance(t *testing.T, newHarness func(*testing.T) *storeHarness) {
	ctx := context.Background()

	t.Run("CreateGet", func(t *testing.T) {
		h := newHarness(t)
		e := entry(h.clock, "k1", "u1", 1)
		if err := h.store.Create(ctx, e); err != nil {
			t.Fatalf("Create = %v, want nil", err)
		}
		got, err := h.store.Get(ctx, "k1")
		if err != nil {
			t.Fatalf("Get = %v, want nil", err)
		}
		if d := cmp.Diff(got, e); d != "" {
			t.Errorf("Get (-got +want):\n%s", d)
		}
		if _, err := h.store.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if err := h.store.Create(ctx, entry(h.clock, "k1", "u1", 1)); !errors.Is(err, ErrExists) {
			t.Errorf("Create(existing) = %v, want ErrExists", err)
		}
	})

	t.Run("DataIsCopied", func(t *testing.T) {
		h := newHarness(t)
		e := entry(h.clock, "k1", "", 1)
		want := slices.Clone(e.Data)
		if err := h.store.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		e.Data[0] = 'X'
		got, _ := h.store.Get(ctx, "k1")
		if string(got.Data) != string(want) {
			t.Errorf("Get after the caller changed its Data = %q, want %q", got.Data, want)
		}
	})

	t.Run("UpdateVersion", func(t *testing.T) {
		h := newHarness(t)
		if err := h.store.Create(ctx, entry(h.clock, "k1", "u1", 1)); err != nil {
			t.Fatal(err)
		}
		v2 := entry(h.clock, "k1", "u1", 2)
		v2.Expires = h.clock.Now().Add(2 * time.Hour)
		if err := h.store.Update(ctx, v2, 1); err != nil {
			t.Fatalf("Update(expect 1) = %v, want nil", err)
		}
		got, _ := h.store.Get(ctx, "k1")
		if d := cmp.Diff(got, v2); d != "" {
			t.Errorf("Get after Update (-got +want):\n%s", d)
		}
		// A writer that read version 1 lost the race.
		if err := h.store.Update(ctx, entry(h.clock, "k1", "u1", 2), 1); !errors.Is(err, ErrConflict) {
			t.Errorf("Update(stale expect 1) = %v, want ErrConflict", err)
		}
		if err := h.store.Update(ctx, entry(h.clock, "nope", "u1", 2), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		h := newHarness(t)
		if err := h.store.Create(ctx, entry(h.clock, "k1", "u1", 1)); err != nil {
			t.Fatal(err)
		}
		if err := h.store.Delete(ctx, "k1"); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if _, err := h.store.Get(ctx, "k1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := h.store.Delete(ctx, "k1"); err != nil {
			t.Errorf("Delete(again) = %v, want nil", err)
		}
		// Regression: a write racing a logout must not resurrect the session.
		if err := h.store.Update(ctx, entry(h.clock, "k1", "u1", 2), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update after Delete = %v, want ErrNotFound", err)
		}
		waitRevoked(t, h, "k1")
	})

	t.Run("Expiry", func(t *testing.T) {
		h := newHarness(t)
		e := entry(h.clock, "k1", "u1", 1)
		e.Expires = h.clock.Now().Add(10 * time.Second)
		if err := h.store.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(10*time.Second - time.Millisecond)
		if _, err := h.store.Get(ctx, "k1"); err != nil {
			t.Fatalf("Get 1ms before Expires = %v, want nil", err)
		}
		h.clock.Advance(time.Millisecond)
		if _, err := h.store.Get(ctx, "k1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get at Expires = %v, want ErrNotFound", err)
		}
		if err := h.store.Update(ctx, entry(h.clock, "k1", "u1", 2), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update after Expires = %v, want ErrNotFound", err)
		}
		if l, _ := h.store.List(ctx); len(l) != 0 {
			t.Errorf("List after Expires = %d entries, want 0", len(l))
		}
	})

	t.Run("DeleteUser", func(t *testing.T) {
		h := newHarness(t)
		for _, e := range []Entry{
			entry(h.clock, "a1", "alice", 1), entry(h.clock, "a2", "alice", 1), entry(h.clock, "a3", "alice", 1),
			entry(h.clock, "b1", "bob", 1), entry(h.clock, "b2", "bob", 1), entry(h.clock, "n1", "", 1),
		} {
			if err := h.store.Create(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		n, err := h.store.DeleteUser(ctx, "alice")
		if err != nil || n != 3 {
			t.Fatalf("DeleteUser(alice) = %d, %v; want 3, nil", n, err)
		}
		for _, k := range []string{"a1", "a2", "a3"} {
			if _, err := h.store.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%s) after DeleteUser = %v, want ErrNotFound", k, err)
			}
		}
		for _, k := range []string{"b1", "b2", "n1"} {
			if _, err := h.store.Get(ctx, k); err != nil {
				t.Errorf("Get(%s) of another user after DeleteUser = %v, want nil", k, err)
			}
		}
		if n, err := h.store.DeleteUser(ctx, "alice"); err != nil || n != 0 {
			t.Errorf("DeleteUser(alice) again = %d, %v; want 0, nil", n, err)
		}
		waitRevoked(t, h, "a1", "a2", "a3")
	})

	t.Run("DeleteUserAfterUpdate", func(t *testing.T) {
		// Regression: an update that extends a session keeps it in its
		// user's index, so revoking the user still finds it.
		h := newHarness(t)
		e := entry(h.clock, "a1", "alice", 1)
		e.Expires = h.clock.Now().Add(time.Minute)
		if err := h.store.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(50 * time.Second)
		e2 := entry(h.clock, "a1", "alice", 2)
		e2.Expires = h.clock.Now().Add(time.Hour)
		if err := h.store.Update(ctx, e2, 1); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(20 * time.Minute)
		// Another write to the index sweeps what it believes expired.
		if err := h.store.Create(ctx, entry(h.clock, "a2", "alice", 1)); err != nil {
			t.Fatal(err)
		}
		if n, err := h.store.DeleteUser(ctx, "alice"); err != nil || n != 2 {
			t.Errorf("DeleteUser(alice) = %d, %v; want 2, nil", n, err)
		}
	})

	t.Run("DeleteUserAfterChurn", func(t *testing.T) {
		// The user index stays right when the user's sessions end one by
		// one, first, last and in between, or expire.
		h := newHarness(t)
		for i := range 6 {
			e := entry(h.clock, fmt.Sprintf("a%d", i), "alice", 1)
			if i == 2 {
				e.Expires = h.clock.Now().Add(time.Minute)
			}
			if err := h.store.Create(ctx, e); err != nil {
				t.Fatal(err)
			}
			if err := h.store.Create(ctx, entry(h.clock, fmt.Sprintf("b%d", i), "bob", 1)); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{"a0", "a5", "a3"} {
			if err := h.store.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.store.Update(ctx, entry(h.clock, "a1", "alice", 2), 1); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(2 * time.Minute)
		if err := h.store.Create(ctx, entry(h.clock, "a6", "alice", 1)); err != nil {
			t.Fatal(err)
		}
		// a1, a4 and a6 are live; a2 expired (a store may still count it).
		n, err := h.store.DeleteUser(ctx, "alice")
		if err != nil || n < 3 || n > 4 {
			t.Errorf("DeleteUser(alice) = %d, %v; want 3 (or 4 with the expired one), nil", n, err)
		}
		for _, k := range []string{"a1", "a4", "a6"} {
			if _, err := h.store.Get(ctx, k); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%s) after DeleteUser = %v, want ErrNotFound", k, err)
			}
		}
		if n, err := h.store.DeleteUser(ctx, "bob"); err != nil || n != 6 {
			t.Errorf("DeleteUser(bob) = %d, %v; want 6, nil", n, err)
		}
	})

	t.Run("DeleteAllAndList", func(t *testing.T) {
		h := newHarness(t)
		var want []string
		for i := range 7 {
			k := fmt.Sprintf("k%d", i)
			want = append(want, k)
			if err := h.store.Create(ctx, entry(h.clock, k, fmt.Sprintf("u%d", i%3), 1)); err != nil {
				t.Fatal(err)
			}
		}
		// An expired entry is not listed.
		old := entry(h.clock, "old", "u0", 1)
		old.Expires = h.clock.Now().Add(time.Second)
		if err := h.store.Create(ctx, old); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Second)
		list, err := h.store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range list {
			got = append(got, e.Key)
			if len(e.Data) == 0 || e.Version != 1 {
				t.Errorf("List entry %s = %+v, want its data and version", e.Key, e)
			}
		}
		slices.Sort(got)
		if d := cmp.Diff(got, want); d != "" {
			t.Errorf("List keys (-got +want):\n%s", d)
		}
		n, err := h.store.DeleteAll(ctx)
		if err != nil || n < 7 {
			t.Fatalf("DeleteAll = %d, %v; want at least 7, nil", n, err)
		}
		if list, _ := h.store.List(ctx); len(list) != 0 {
			t.Errorf("List after DeleteAll = %d entries, want 0", len(list))
		}
		if _, err := h.store.Get(ctx, "k3"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after DeleteAll = %v, want ErrNotFound", err)
		}
		waitRevokedAll(t, h)
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// Optimistic concurrency: every increment that a writer was told
		// succeeded is in the final version; none is lost.
		h := newHarness(t)
		if err := h.store.Create(ctx, entry(h.clock, "k", "u", 1)); err != nil {
			t.Fatal(err)
		}
		const writers, each = 8, 15
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for done := 0; done < each; {
					cur, err := h.store.Get(ctx, "k")
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					next := cur
					next.Version = cur.Version + 1
					next.Data = []byte(fmt.Sprint(next.Version))
					switch err := h.store.Update(ctx, next, cur.Version); {
					case err == nil:
						wins.Add(1)
						done++
					case errors.Is(err, ErrConflict):
					default:
						t.Errorf("Update: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, _ := h.store.Get(ctx, "k")
		if want := uint64(1 + writers*each); got.Version != want || wins.Load() != writers*each || string(got.Data) != fmt.Sprint(want) {
			t.Errorf("after %d successful updates: version %d, data %q, want %d", wins.Load(), got.Version, got.Data, want)
		}
	})

	t.Run("Lock", func(t *testing.T) {
		h := newHarness(t)
		if err := h.store.TryLock(ctx, "a", "t1", time.Minute); err != nil {
			t.Fatalf("TryLock(a, t1) = %v, want nil", err)
		}
		if err := h.store.TryLock(ctx, "a", "t2", time.Minute); !errors.Is(err, ErrLocked) {
			t.Errorf("TryLock(a, t2) while t1 holds it = %v, want ErrLocked", err)
		}
		if err := h.store.TryLock(ctx, "b", "t2", time.Minute); err != nil {
			t.Errorf("TryLock(b, t2) = %v, want nil", err)
		}
		if err := h.store.Unlock(ctx, "a", "t2"); err != nil {
			t.Errorf("Unlock(a, t2) = %v", err)
		}
		if err := h.store.TryLock(ctx, "a", "t3", time.Minute); !errors.Is(err, ErrLocked) {
			t.Errorf("TryLock(a) after a non-holder's Unlock = %v, want ErrLocked", err)
		}
		if err := h.store.Unlock(ctx, "a", "t1"); err != nil {
			t.Errorf("Unlock(a, t1) = %v", err)
		}
		if err := h.store.TryLock(ctx, "a", "t3", time.Minute); err != nil {
			t.Errorf("TryLock(a, t3) after release = %v, want nil", err)
		}
	})

	t.Run("LockExpiry", func(t *testing.T) {
		h := newHarness(t)
		// Generous margins: with Redis the ttl runs on the real clock.
		if err := h.store.TryLock(ctx, "a", "t1", 400*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		h.advance(50 * time.Millisecond)
		if err := h.store.TryLock(ctx, "a", "t2", time.Minute); !errors.Is(err, ErrLocked) {
			t.Errorf("TryLock before expiry = %v, want ErrLocked", err)
		}
		h.advance(400 * time.Millisecond)
		if err := h.store.TryLock(ctx, "a", "t2", time.Minute); err != nil {
			t.Fatalf("TryLock after the holder's ttl = %v, want nil", err)
		}
		// Regression: the first holder, late, must not release the lock
		// someone else now holds.
		if err := h.store.Unlock(ctx, "a", "t1"); err != nil {
			t.Fatal(err)
		}
		if err := h.store.TryLock(ctx, "a", "t3", time.Minute); !errors.Is(err, ErrLocked) {
			t.Errorf("TryLock after a stale holder's Unlock = %v, want ErrLocked", err)
		}
	})

	t.Run("LockExclusive", func(t *testing.T) {
		h := newHarness(t)
		var winners atomic.Int64
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				switch err := h.store.TryLock(ctx, "x", fmt.Sprint(i), time.Minute); {
				case err == nil:
					winners.Add(1)
				case !errors.Is(err, ErrLocked):
					t.Errorf("TryLock: %v", err)
				}
			})
		}
		wg.Wait()
		if winners.Load() != 1 {
			t.Errorf("%d of 20 concurrent TryLock calls won, want 1", winners.Load())
		}
	})
}

// waitRevoked waits for OnRevoke to report every key.
func waitRevoked(t *testing.T, h *storeHarness, keys ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	timeout := time.After(time.Second)
	for len(want) > 0 {
		select {
		case r := <-h.revoked:
			for _, k := range r.Keys {
				delete(want, k)
			}
		case <-timeout:
			t.Errorf("OnRevoke did not report %v within 1s", want)
			return
		}
	}
}

func waitRevokedAll(t *testing.T, h *storeHarness) {
	t.Helper()
	timeout := time.After(time.Second)
	for {
		select {
		case r := <-h.revoked:
			if r.All {
				return
			}
		case <-timeout:
			t.Errorf("OnRevoke did not report All within 1s")
			return
		}
	}
}
