package session

import (
	"crypto/subtle"
	"sync"
	"sync/atomic"
)

// DefaultCacheEntries is the default of Config.CacheEntries.
const DefaultCacheEntries = 10_000

// gcmTagLen is the length of the GCM tag that ends a sealed record.
const gcmTagLen = 16

// decodedCache memoises opening sealed records. Decoding a record's JSON
// costs several times the rest of a Load, so a Load whose store entry is
// byte-for-byte the one a previous Load (or Save) opened reuses that
// result. It is never a source of truth: every Load still reads the store,
// which decides whether the session exists and what its sealed bytes are;
// the cache only skips decrypting bytes it has already authenticated. So a
// cached record never outlives the stored entry it was opened from: once
// the entry is deleted, expired, rewritten or resealed, the cached copy no
// longer matches and is not used.
//
// An entry is matched on storage key, version, and the sealed record's
// header (key id, nonce) and GCM tag. Anything else in the store (an
// altered ciphertext under a reused tag included) yields at most the
// plaintext that was authenticated for that key and version before.
//
// It holds at most max records, whatever the traffic: sessions are
// created by sign-ins, which an attacker can script, and every one of
// them is remembered when it starts. When full it evicts with the CLOCK
// algorithm (a second chance for every record used since the hand last
// passed), so the sessions in use stay and one-off sessions, which are
// never used after they start, go first. A hit only sets a flag under the
// read lock.
type decodedCache struct {
	max int

	mu    sync.RWMutex
	index map[string]int // storage key -> position in slots
	slots []cacheSlot
	hand  int // next slot the clock looks at

	hits, misses, evictions atomic.Uint64
}

type cacheSlot struct {
	key     string
	version uint64
	mark    [sealHeadLen + gcmTagLen]byte
	rec     *Record // never handed out: callers get clones
	// used is the CLOCK reference bit: set (atomically, under the read
	// lock) by a hit, cleared as the hand passes.
	used uint32
}

// CacheStats counts what the Manager's cache of decoded records did since
// the Manager was made, for metrics.
type CacheStats struct {
	// Hits are Loads that reused a decoded record; Misses are those that
	// decrypted and decoded the stored one.
	Hits, Misses uint64
	// Evictions are records dropped to make room (not revocations).
	Evictions uint64
	// Entries is how many records the cache holds; Capacity its bound
	// (session.cache_entries).
	Entries, Capacity int
}

func newDecodedCache(max int) *decodedCache {
	return &decodedCache{max: max, index: map[string]int{}}
}

func sealMark(data []byte) (m [sealHeadLen + gcmTagLen]byte, ok bool) {
	if len(data) < sealHeadLen+gcmTagLen {
		return m, false
	}
	copy(m[:], data[:sealHeadLen])
	copy(m[sealHeadLen:], data[len(data)-gcmTagLen:])
	return m, true
}

// get returns a clone of the record opened from e before, or nil.
func (c *decodedCache) get(e Entry) *Record {
	mark, ok := sealMark(e.Data)
	if !ok {
		c.misses.Add(1)
		return nil
	}
	var rec *Record
	c.mu.RLock()
	if i, hit := c.index[e.Key]; hit {
		s := &c.slots[i]
		if s.version == e.Version && subtle.ConstantTimeCompare(s.mark[:], mark[:]) == 1 {
			rec = s.rec
			if atomic.LoadUint32(&s.used) == 0 {
				atomic.StoreUint32(&s.used, 1)
			}
		}
	}
	c.mu.RUnlock()
	if rec == nil {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return rec.Clone()
}

// put remembers rec as the opening of e; rec must not be modified after.
func (c *decodedCache) put(e Entry, rec *Record) {
	mark, ok := sealMark(e.Data)
	if !ok || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if i, exists := c.index[e.Key]; exists {
		// A newer version of a session in the cache: written by a request
		// of the session, so it is in use.
		c.slots[i] = cacheSlot{key: c.slots[i].key, version: e.Version, mark: mark, rec: rec, used: 1}
		return
	}
	s := cacheSlot{key: e.Key, version: e.Version, mark: mark, rec: rec}
	if len(c.slots) < c.max {
		if len(c.slots) == cap(c.slots) {
			// Grow by doubling, as append would, but never past the bound.
			grown := make([]cacheSlot, len(c.slots), min(max(2*len(c.slots), 64), c.max))
			copy(grown, c.slots)
			c.slots = grown
		}
		c.index[e.Key] = len(c.slots)
		c.slots = append(c.slots, s)
		return
	}
	for c.slots[c.hand].used != 0 {
		c.slots[c.hand].used = 0
		c.hand = (c.hand + 1) % len(c.slots)
	}
	delete(c.index, c.slots[c.hand].key)
	c.slots[c.hand] = s
	c.index[e.Key] = c.hand
	c.hand = (c.hand + 1) % len(c.slots)
	c.evictions.Add(1)
}

// removeAt drops slot i, moving the last slot into its place; c.mu must
// be held.
func (c *decodedCache) removeAt(i int) {
	delete(c.index, c.slots[i].key)
	last := len(c.slots) - 1
	if i != last {
		c.slots[i] = c.slots[last]
		c.index[c.slots[i].key] = i
	}
	c.slots[last] = cacheSlot{}
	c.slots = c.slots[:last]
	if c.hand >= len(c.slots) {
		c.hand = 0
	}
}

func (c *decodedCache) has(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.index[key]
	return ok
}

func (c *decodedCache) drop(key string) {
	c.mu.Lock()
	if i, ok := c.index[key]; ok {
		c.removeAt(i)
	}
	c.mu.Unlock()
}

func (c *decodedCache) dropUser(userID string) {
	c.mu.Lock()
	// Backwards, so that the slot moved into a hole was already looked at.
	for i := len(c.slots) - 1; i >= 0; i-- {
		if c.slots[i].rec.UserID == userID {
			c.removeAt(i)
		}
	}
	c.mu.Unlock()
}

func (c *decodedCache) clear() {
	c.mu.Lock()
	clear(c.index)
	clear(c.slots)
	c.slots = c.slots[:0]
	c.hand = 0
	c.mu.Unlock()
}

func (c *decodedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.slots)
}

func (c *decodedCache) stats() CacheStats {
	return CacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Entries: c.len(), Capacity: c.max,
	}
}
