package alert

import (
	"hash/maphash"
	"math"
	"strings"
	"sync"
)

// Buckets is how many sub-windows a rule's window is split into: a window
// is kept to a twentieth of itself (see the package comment).
const Buckets = 20

// EvictSample is how many of a full shard's least recently seen keys are
// weighed to pick the one to drop.
const EvictSample = 8

// table holds one rule's keys of one kind (subjects or addresses), spread
// over shards each with its lock and its share of the keys.
type table struct {
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	max     int
	// lru is the sentinel of a circular list of entries, most recently
	// seen first.
	lru entry
	_   [64]byte // keeps neighbouring shards' locks off one cache line
}

// entry is one key's window: Buckets counters in a ring, the newest at
// head. Times are Unix nanoseconds; bucket i covers [i*width, (i+1)*width).
type entry struct {
	key string
	// head is the index of the newest bucket; buckets[mod(i)] holds bucket
	// i for head-Buckets < i <= head.
	head    int64
	buckets [Buckets]uint32
	// total is the sum of the buckets.
	total int64
	// since is the time of the earliest observation counted since total
	// was last 0; last is the latest observation's.
	since, last int64
	// fired is when the rule last fired for this key, if hasFired.
	fired    int64
	hasFired bool
	// samples is a ring of the latest request ids, next the slot the
	// next one goes to once it is full.
	samples    []string
	next       int
	prev, succ *entry
}

func newTable(maxKeys int) *table {
	// Shards of at least 256 keys, at most 16 of them (a power of two).
	n := 1
	for n < 16 && maxKeys/(2*n) >= 256 {
		n *= 2
	}
	t := &table{seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range t.shards {
		s := &t.shards[i]
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.entries = make(map[string]*entry)
		s.lru.prev, s.lru.succ = &s.lru, &s.lru
	}
	return t
}

func (t *table) shard(key string) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[maphash.String(t.seed, key)&uint64(len(t.shards)-1)]
}

// len is how many keys the table holds.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// observe adds v at time ns to key's window and returns the alert that
// fires, if any. It reports how many live keys it dropped to make room.
func (t *table) observe(r *rule, kind, key string, ns, v int64, requestID string) (a Alert, fire bool, evicted int) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, evicted := s.get(r, key, ns)
	if !e.add(r, ns, v) {
		return Alert{}, false, evicted
	}
	if requestID != "" && e.total > r.sampleAbove {
		e.sample(r.samples, requestID)
	}
	if e.total < r.Threshold || (e.hasFired && e.last-e.fired < r.cooldown) {
		return Alert{}, false, evicted
	}
	e.fired, e.hasFired = e.last, true
	return r.alert(kind, e), true, evicted
}

// get returns key's entry, moved to the front, or a new one. Before adding
// one it drops up to two keys from the idle end that hold no state; when
// the shard is still full it drops the lightest of the EvictSample least
// recently seen (see victim), and reports it if it still held state.
func (s *shard) get(r *rule, key string, ns int64) (e *entry, evicted int) {
	if e, ok := s.entries[key]; ok {
		if s.lru.succ != e {
			e.unlink()
			s.pushFront(e)
		}
		return e, 0
	}
	idx := r.bucket(ns)
	for range 2 {
		old := s.lru.prev
		if old == &s.lru || !old.idle(r, ns, idx) {
			break
		}
		s.remove(old)
	}
	if len(s.entries) >= s.max {
		v := s.victim(r, ns, idx)
		if !v.idle(r, ns, idx) {
			evicted = 1
		}
		s.remove(v)
	}
	// Clone: key may share memory with a large buffer.
	e = &entry{key: strings.Clone(key), head: idx, since: ns, last: ns}
	s.entries[e.key] = e
	s.pushFront(e)
	return e, evicted
}

// victim picks the entry to drop from a full shard: among the EvictSample
// least recently seen, the one with the least live count, preferring one
// whose cooldown is over (dropping a key in cooldown may repeat an alert),
// then the least recently seen. A key that has counted n is thus dropped
// only once the sample holds no key that counted less.
func (s *shard) victim(r *rule, ns, idx int64) *entry {
	var best *entry
	var bestTotal int64
	var bestCooling bool
	e := s.lru.prev
	for range EvictSample {
		if e == &s.lru {
			break
		}
		total := e.live(idx)
		cooling := e.cooling(r, ns)
		if best == nil || total < bestTotal || (total == bestTotal && bestCooling && !cooling) {
			best, bestTotal, bestCooling = e, total, cooling
		}
		e = e.prev
	}
	return best
}

func (s *shard) pushFront(e *entry) {
	e.prev, e.succ = &s.lru, s.lru.succ
	s.lru.succ.prev = e
	s.lru.succ = e
}

func (s *shard) remove(e *entry) {
	e.unlink()
	delete(s.entries, e.key)
}

func (e *entry) unlink() {
	e.prev.succ = e.succ
	e.succ.prev = e.prev
	e.prev, e.succ = nil, nil
}

// bucket is the index of the bucket holding time ns.
func (r *rule) bucket(ns int64) int64 {
	i := ns / r.width
	if ns < 0 && ns%r.width != 0 {
		i--
	}
	return i
}

func ring(i int64) int {
	m := int(i % Buckets)
	if m < 0 {
		m += Buckets
	}
	return m
}

// add counts v at time ns, sliding the window forward if ns is past it. It
// returns false, counting nothing, when ns is before the window of the
// newest observation.
func (e *entry) add(r *rule, ns, v int64) bool {
	idx := r.bucket(ns)
	switch {
	case idx > e.head:
		e.advance(idx)
	case idx <= e.head-Buckets:
		return false
	}
	b := &e.buckets[ring(idx)]
	v = min(v, int64(math.MaxUint32-*b))
	*b += uint32(v)
	if e.total == 0 || ns < e.since {
		e.since = ns
	}
	e.total += v
	e.last = max(e.last, ns)
	return true
}

// advance makes idx the newest bucket, emptying those that leave the
// window.
func (e *entry) advance(idx int64) {
	if idx-e.head >= Buckets {
		e.buckets = [Buckets]uint32{}
		e.total = 0
	} else {
		for i := e.head + 1; i <= idx; i++ {
			b := &e.buckets[ring(i)]
			e.total -= int64(*b)
			*b = 0
		}
	}
	e.head = idx
}

// live is what total would be once the window slides to bucket idx.
func (e *entry) live(idx int64) int64 {
	switch {
	case idx <= e.head:
		return e.total
	case idx-e.head >= Buckets:
		return 0
	}
	total := e.total
	for i := e.head + 1; i <= idx; i++ {
		total -= int64(e.buckets[ring(i)])
	}
	return total
}

// cooling reports whether the rule fired for e within the cooldown.
func (e *entry) cooling(r *rule, ns int64) bool {
	return e.hasFired && ns-e.fired < r.cooldown
}

// idle reports whether e holds no state at time ns: nothing in the window,
// no cooldown running.
func (e *entry) idle(r *rule, ns, idx int64) bool {
	return e.live(idx) == 0 && !e.cooling(r, ns)
}

// sample keeps id among the latest n request ids.
func (e *entry) sample(n int, id string) {
	id = strings.Clone(truncate(id, maxRequestIDLen))
	if len(e.samples) < n {
		if e.samples == nil {
			e.samples = make([]string, 0, n)
		}
		e.samples = append(e.samples, id)
		return
	}
	e.samples[e.next] = id
	e.next = (e.next + 1) % n
}

// requestIDs returns a copy of the samples, oldest first.
func (e *entry) requestIDs() []string {
	if len(e.samples) == 0 {
		return nil
	}
	out := make([]string, 0, len(e.samples))
	out = append(out, e.samples[e.next:]...)
	return append(out, e.samples[:e.next]...)
}

// first is the time of the earliest observation still in the window, to
// the bucket: since, or the start of the window's oldest bucket if later.
func (e *entry) first(r *rule) int64 {
	return max(e.since, (e.head-Buckets+1)*r.width)
}
