package session

import (
	"crypto/subtle"
	"sync"
)

// decodedCacheSize bounds the decoded records a Manager keeps.
const decodedCacheSize = 8192

// gcmTagLen is the length of the GCM tag that ends a sealed record.
const gcmTagLen = 16

// decodedCache memoises opening sealed records. Decoding a record's JSON
// costs several times the rest of a Load, so a Load whose store entry is
// byte-for-byte the one a previous Load (or Save) opened reuses that
// result. It is never a source of truth: every Load still reads the store,
// which decides whether the session exists and what its sealed bytes are;
// the cache only skips decrypting bytes it has already authenticated.
//
// An entry is matched on storage key, version, and the sealed record's
// header (key id, nonce) and GCM tag. Anything else in the store (an
// altered ciphertext under a reused tag included) yields at most the
// plaintext that was authenticated for that key and version before.
type decodedCache struct {
	mu sync.RWMutex
	m  map[string]decoded
}

type decoded struct {
	version uint64
	mark    [sealHeadLen + gcmTagLen]byte
	rec     *Record // never handed out: callers get clones
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
		return nil
	}
	c.mu.RLock()
	d, hit := c.m[e.Key]
	c.mu.RUnlock()
	if !hit || d.version != e.Version || subtle.ConstantTimeCompare(d.mark[:], mark[:]) != 1 {
		return nil
	}
	return d.rec.Clone()
}

// put remembers rec as the opening of e; rec must not be modified after.
func (c *decodedCache) put(e Entry, rec *Record) {
	mark, ok := sealMark(e.Data)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]decoded)
	}
	if _, exists := c.m[e.Key]; !exists && len(c.m) >= decodedCacheSize {
		// Drop an arbitrary entry: map order is random enough to keep the
		// sessions in use, which come back at once.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[e.Key] = decoded{version: e.Version, mark: mark, rec: rec}
}

func (c *decodedCache) has(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.m[key]
	return ok
}

func (c *decodedCache) drop(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

func (c *decodedCache) dropUser(userID string) {
	c.mu.Lock()
	for k, d := range c.m {
		if d.rec.UserID == userID {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}

func (c *decodedCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
