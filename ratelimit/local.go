package ratelimit

import (
	"context"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Local keeps token buckets in this process, one rate.Limiter per key and
// tier: rate Limit/Window, burst Burst, full when first seen.
//
// It tracks at most MaxKeys buckets. A bucket left unused long enough to
// be full again holds no state and is dropped as soon as a new key needs
// room; when there is no such bucket, the least recently used one is
// dropped (its client starts again with a full bucket). A client spraying
// keys therefore cannot grow memory, and can only push out buckets idler
// than its own. The buckets are spread over shards, each with its lock and
// its share of MaxKeys, so checks on different keys rarely wait for each
// other.
//
// Buckets are not shared between replicas: with N replicas behind a load
// balancer a client may get up to N times its quota.
type Local struct {
	tiers  map[string]*tierSpec
	now    func() time.Time
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	max     int
	// lru is the sentinel of a circular list of buckets, most recently
	// used first.
	lru bucket
	_   [64]byte // keeps neighbouring shards' locks off one cache line
}

type bucketKey struct {
	tier *tierSpec
	key  string
}

type bucket struct {
	id         bucketKey
	lim        *rate.Limiter
	last       int64 // when last checked, Unix ns
	prev, next *bucket
}

// NewLocal returns a Local for cfg's tiers and MaxKeys; cfg must be valid.
// now is the clock (nil: time.Now).
func NewLocal(cfg Config, now func() time.Time) *Local {
	if now == nil {
		now = time.Now
	}
	maxKeys := max(cfg.MaxKeys, 1)
	// Shards of at least 256 buckets, at most 16 of them (a power of two).
	n := 1
	for n < 16 && maxKeys/(2*n) >= 256 {
		n *= 2
	}
	l := &Local{tiers: compileTiers(cfg.Tiers), now: now, seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.buckets = make(map[bucketKey]*bucket)
		s.lru.prev, s.lru.next = &s.lru, &s.lru
	}
	return l
}

// Allow implements Limiter. It never returns ErrUnavailable.
func (l *Local) Allow(_ context.Context, key string, tier string) (Result, error) {
	t, err := lookup(l.tiers, key, tier)
	if err != nil {
		return Result{}, err
	}
	now := l.now()
	s := &l.shards[0]
	if len(l.shards) > 1 {
		s = &l.shards[maphash.String(l.seed, key)&uint64(len(l.shards)-1)]
	}
	s.mu.Lock()
	b := s.bucket(t, key, now)
	// Under the shard lock, so Remaining is exactly what this check left.
	allowed := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	s.mu.Unlock()
	return t.result(allowed, tokens), nil
}

// bucket returns the bucket of key in t, created full if new, and marks it
// used at now. s.mu is held.
func (s *shard) bucket(t *tierSpec, key string, now time.Time) *bucket {
	ns := now.UnixNano()
	if b, ok := s.buckets[bucketKey{t, key}]; ok {
		b.last = ns
		if s.lru.next != b {
			b.unlink()
			s.pushFront(b)
		}
		return b
	}
	// Buckets full again hold nothing worth keeping: drop a couple from the
	// idle end on every insert, so memory follows the active keys.
	for range 2 {
		old := s.lru.prev
		if old == &s.lru || ns-old.last < old.id.tier.fill {
			break
		}
		s.remove(old)
	}
	if len(s.buckets) >= s.max {
		s.remove(s.lru.prev)
	}
	// Clone: key may share memory with a large request buffer.
	b := &bucket{id: bucketKey{t, strings.Clone(key)}, lim: rate.NewLimiter(t.rate, t.burst), last: ns}
	s.buckets[b.id] = b
	s.pushFront(b)
	return b
}

func (s *shard) pushFront(b *bucket) {
	b.prev, b.next = &s.lru, s.lru.next
	s.lru.next.prev = b
	s.lru.next = b
}

func (s *shard) remove(b *bucket) {
	b.unlink()
	delete(s.buckets, b.id)
}

func (b *bucket) unlink() {
	b.prev.next = b.next
	b.next.prev = b.prev
	b.prev, b.next = nil, nil
}

// Len is how many buckets are tracked, for metrics.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
