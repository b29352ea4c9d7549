package apikey

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

func TestFileStoreConformance(t *testing.T) {
	testStoreConformance(t, func(t *testing.T) Store {
		return openFile(t, keyFile(t), FileOptions{})
	})
}

func TestRedisStoreConformance(t *testing.T) {
	_, client := startRedis(t)
	var n atomic.Int64
	testStoreConformance(t, func(t *testing.T) Store {
		return NewRedisStore(client, RedisOptions{Prefix: fmt.Sprintf("test%d:", n.Add(1))})
	})
}

var epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// record returns a valid record named by id (a 12-character key id).
func record(id string, version uint64) *Record {
	h := testPepper(id)
	return &Record{
		ID: id, Name: "key " + id, Owner: "team-" + id[:2], Scopes: []string{"contacts:read", "deals:write"}, Tier: "gold",
		Created: epoch, Hash: h, Version: version,
	}
}

// ids returns n distinct key ids.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "aaaaaaaaa" + string([]byte{alphabet[i>>10&31], alphabet[i>>5&31], alphabet[i&31]})
	}
	return out
}

// testStoreConformance is the one suite every Store passes.
func testStoreConformance(t *testing.T, newStore func(*testing.T) Store) {
	ctx := context.Background()
	id := ids(20)

	t.Run("CreateGet", func(t *testing.T) {
		s := newStore(t)
		full := record(id[0], 1)
		full.Expires = epoch.Add(time.Hour)
		full.LastUsed = epoch.Add(time.Minute)
		full.Disabled = true
		full.Previous = &Previous{Hash: testPepper("prev"), Until: epoch.Add(24 * time.Hour)}
		bare := &Record{ID: id[1], Name: "bare", Created: epoch, Hash: testPepper("bare"), Version: 1}
		for _, want := range []*Record{full, bare} {
			if err := s.Create(ctx, want); err != nil {
				t.Fatalf("Create(%s) = %v, want nil", want.ID, err)
			}
			got, err := s.Get(ctx, want.ID)
			if err != nil {
				t.Fatalf("Get(%s) = %v, want nil", want.ID, err)
			}
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("Get(%s) (-got +want):\n%s", want.ID, d)
			}
		}
		if _, err := s.Get(ctx, id[2]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.Create(ctx, record(id[0], 1)); !errors.Is(err, ErrExists) {
			t.Errorf("Create(existing) = %v, want ErrExists", err)
		}
	})

	t.Run("CreateRefusesInvalid", func(t *testing.T) {
		s := newStore(t)
		for name, r := range map[string]*Record{
			"bad id":        {ID: "not-an-id", Hash: testPepper("x")},
			"no hash":       {ID: id[0]},
			"short hash":    {ID: id[0], Hash: []byte("short")},
			"previous hash": {ID: id[0], Hash: testPepper("x"), Previous: &Previous{Until: epoch}},
		} {
			if err := s.Create(ctx, r); !errors.Is(err, ErrInvalid) {
				t.Errorf("Create(%s) = %v, want ErrInvalid", name, err)
			}
		}
		if l, _ := s.List(ctx); len(l) != 0 {
			t.Errorf("List after refused creates = %d records, want 0", len(l))
		}
	})

	t.Run("RecordIsCopied", func(t *testing.T) {
		s := newStore(t)
		r := record(id[0], 1)
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Scopes[0] = "admin"
		r.Hash[0] ^= 1
		r.Name = "changed"
		got, _ := s.Get(ctx, id[0])
		if d := cmp.Diff(got, record(id[0], 1)); d != "" {
			t.Errorf("Get after the caller changed its record (-got +want):\n%s", d)
		}
	})

	t.Run("UpdateVersion", func(t *testing.T) {
		s := newStore(t)
		if err := s.Create(ctx, record(id[0], 1)); err != nil {
			t.Fatal(err)
		}
		next := record(id[0], 2)
		next.Disabled = true
		if err := s.Update(ctx, next, 1); err != nil {
			t.Fatalf("Update(expect 1) = %v, want nil", err)
		}
		if got, _ := s.Get(ctx, id[0]); got.Version != 2 || !got.Disabled {
			t.Errorf("Get after Update = version %d, disabled %v; want 2, true", got.Version, got.Disabled)
		}
		stale := record(id[0], 2)
		if err := s.Update(ctx, stale, 1); !errors.Is(err, ErrConflict) {
			t.Errorf("Update(stale expect 1) = %v, want ErrConflict", err)
		}
		if got, _ := s.Get(ctx, id[0]); !got.Disabled {
			t.Errorf("a conflicting Update changed the record: %+v", got)
		}
		if err := s.Update(ctx, record(id[1], 2), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update(unknown) = %v, want ErrNotFound", err)
		}
	})

	t.Run("UpdateKeepsLaterLastUsed", func(t *testing.T) {
		s := newStore(t)
		if err := s.Create(ctx, record(id[0], 1)); err != nil {
			t.Fatal(err)
		}
		used := epoch.Add(10 * time.Minute)
		if err := s.MarkUsed(ctx, map[string]time.Time{id[0]: used}); err != nil {
			t.Fatal(err)
		}
		// An admin's update read before the use must not erase it.
		next := record(id[0], 2)
		next.Name = "renamed"
		if err := s.Update(ctx, next, 1); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, id[0])
		if !got.LastUsed.Equal(used) || got.Name != "renamed" {
			t.Errorf("Get = last used %v, name %q; want %v, renamed", got.LastUsed, got.Name, used)
		}
	})

	t.Run("MarkUsed", func(t *testing.T) {
		s := newStore(t)
		for _, i := range id[:3] {
			if err := s.Create(ctx, record(i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		t1, t2 := epoch.Add(time.Minute), epoch.Add(2*time.Minute)
		if err := s.MarkUsed(ctx, map[string]time.Time{id[0]: t2, id[1]: t1, id[9]: t1}); err != nil {
			t.Fatalf("MarkUsed = %v", err)
		}
		// Never backwards.
		if err := s.MarkUsed(ctx, map[string]time.Time{id[0]: t1}); err != nil {
			t.Fatalf("MarkUsed = %v", err)
		}
		if err := s.MarkUsed(ctx, nil); err != nil {
			t.Fatalf("MarkUsed(nil) = %v", err)
		}
		for _, tc := range []struct {
			id   string
			want time.Time
		}{{id[0], t2}, {id[1], t1}, {id[2], time.Time{}}} {
			got, err := s.Get(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastUsed.Equal(tc.want) || got.Version != 1 {
				t.Errorf("Get(%s) = last used %v, version %d; want %v, 1", tc.id, got.LastUsed, got.Version, tc.want)
			}
		}
		// Marking an unknown id creates nothing.
		if _, err := s.Get(ctx, id[9]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(id marked but never created) = %v, want ErrNotFound", err)
		}
	})

	t.Run("DeleteAndList", func(t *testing.T) {
		s := newStore(t)
		for _, i := range id[:7] {
			if err := s.Create(ctx, record(i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Delete(ctx, id[3]); err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if err := s.Delete(ctx, id[3]); err != nil {
			t.Errorf("Delete(deleted) = %v, want nil", err)
		}
		if _, err := s.Get(ctx, id[3]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get after Delete = %v, want ErrNotFound", err)
		}
		if err := s.Update(ctx, record(id[3], 2), 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update after Delete = %v, want ErrNotFound (an update never brings a key back)", err)
		}
		list, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range list {
			got = append(got, r.ID)
			if len(r.Hash) != hashLen {
				t.Errorf("List record %s has no hash", r.ID)
			}
		}
		slices.Sort(got)
		want := slices.Delete(slices.Clone(id[:7]), 3, 4)
		if d := cmp.Diff(got, want); d != "" {
			t.Errorf("List ids (-got +want):\n%s", d)
		}
		// Deleted keys can be created again (an id is never reused by
		// Generate, but the store does not care).
		if err := s.Create(ctx, record(id[3], 1)); err != nil {
			t.Errorf("Create after Delete = %v", err)
		}
	})

	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// Optimistic concurrency: every update a writer was told succeeded
		// is in the final version; none is lost.
		s := newStore(t)
		if err := s.Create(ctx, record(id[0], 1)); err != nil {
			t.Fatal(err)
		}
		const writers, each = 4, 8
		var wins atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for done := 0; done < each; {
					cur, err := s.Get(ctx, id[0])
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					next := cur.Clone()
					next.Version = cur.Version + 1
					next.Scopes = append(next.Scopes, fmt.Sprintf("w%d", w))
					switch err := s.Update(ctx, next, cur.Version); {
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
		got, _ := s.Get(ctx, id[0])
		if want := uint64(1 + writers*each); got.Version != want || len(got.Scopes) != 2+writers*each {
			t.Errorf("after %d successful updates: version %d, %d scopes; want %d, %d", wins.Load(), got.Version, len(got.Scopes), want, 2+writers*each)
		}
	})

	t.Run("ConcurrentCreates", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		var created atomic.Int64
		for _, i := range id {
			wg.Go(func() {
				for range 2 {
					switch err := s.Create(ctx, record(i, 1)); {
					case err == nil:
						created.Add(1)
					case !errors.Is(err, ErrExists):
						t.Errorf("Create(%s) = %v", i, err)
					}
				}
			})
		}
		wg.Wait()
		list, _ := s.List(ctx)
		if created.Load() != int64(len(id)) || len(list) != len(id) {
			t.Errorf("%d concurrent creates succeeded and %d records listed, want %d each", created.Load(), len(list), len(id))
		}
	})
}
