package ratelimit

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// A client spraying fresh keys (one per request) must not grow memory
// without bound, nor push out the bucket of a client it is competing with.
func TestLocalMaxKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxKeys int
		spray   int
		shards  int
	}{
		{"one shard", 100, 10_000, 1},
		{"sharded", 5000, 50_000, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxKeys = tc.maxKeys
			clock := newClock()
			l := NewLocal(cfg, clock.Now)
			if got := len(l.shards); got != tc.shards {
				t.Fatalf("NewLocal(MaxKeys %d) has %d shards, want %d", tc.maxKeys, got, tc.shards)
			}
			// The victim uses up its bucket, then keeps asking while the
			// spray goes on: it must stay limited.
			for range 5 {
				l.Allow(t.Context(), "victim", "standard")
			}
			for i := range tc.spray {
				if _, err := l.Allow(t.Context(), fmt.Sprintf("spray%d", i), "standard"); err != nil {
					t.Fatal(err)
				}
				if i%50 == 0 {
					clock.Advance(time.Microsecond)
					if r, _ := l.Allow(t.Context(), "victim", "standard"); r.Allowed {
						t.Fatalf("after %d sprayed keys the victim is allowed again: its bucket was dropped", i)
					}
				}
			}
			if got := l.Len(); got != tc.maxKeys {
				t.Errorf("Len() after spraying %d keys = %d, want %d", tc.spray, got, tc.maxKeys)
			}
		})
	}
}

func TestLocalDropsFullBuckets(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tier  string
		idle  time.Duration
		keeps bool
	}{
		// standard fills in 500ms (5 tokens at 10/s).
		{"refilled", "standard", 500 * ms, false},
		{"still refilling", "standard", 499 * ms, true},
		// Its refill time overflows a Duration; it must not wrap to "full".
		{"refill beyond 292 years", "extreme", 1000 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Tiers["extreme"] = Tier{Limit: 1, Window: MaxWindow, Burst: MaxQuota}
			cfg.MaxKeys = 100 // one shard: the drop looks at the new key's shard
			clock := newClock()
			l := NewLocal(cfg, clock.Now)
			l.Allow(t.Context(), "a", tc.tier)
			l.Allow(t.Context(), "a", tc.tier)
			clock.Advance(tc.idle)
			l.Allow(t.Context(), "b", tc.tier)
			want := 1
			if tc.keeps {
				want = 2
			}
			if got := l.Len(); got != want {
				t.Errorf("Len() after %s idle and a new key = %d, want %d", tc.idle, got, want)
			}
		})
	}
}

// A key sliced from a large buffer must not keep the buffer alive.
func TestLocalClonesKeys(t *testing.T) {
	cfg := testConfig()
	cfg.MaxKeys = 100
	l := NewLocal(cfg, newClock().Now)
	large := strings.Repeat("x", 1<<16)
	key := large[:3]
	l.Allow(t.Context(), key, "standard")
	for _, b := range l.shards[0].buckets {
		if got := b.id.key; got != key || unsafe.StringData(got) == unsafe.StringData(large) {
			t.Errorf("stored key %q shares the caller's memory, want a copy", got)
		}
	}
}
