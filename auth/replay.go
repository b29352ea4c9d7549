package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// onceCache remembers keys until a deadline, to refuse a second use of a
// login state or a logout token. It is bounded: expired keys are swept
// when it fills, and when it is still full it refuses new keys (failing
// closed) rather than forgetting live ones, which would reopen replays.
//
// It lives in this process: with several replicas, a replay that reaches
// another replica is stopped by what that replica cannot have (the
// provider's single-use code for a login state; for a logout token, a
// second revocation of what is already revoked is harmless).
type onceCache struct {
	max int

	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time
}

func newOnceCache(max int) *onceCache {
	return &onceCache{max: max, seen: make(map[[sha256.Size]byte]time.Time)}
}

// add records key until until and reports whether it was new. Keys are
// kept hashed, so the cache holds no usable token or state.
func (c *onceCache) add(key string, until, now time.Time) bool {
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	if exp, ok := c.seen[h]; ok && now.Before(exp) {
		return false
	}
	if len(c.seen) >= c.max {
		for k, exp := range c.seen {
			if !now.Before(exp) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return false
		}
	}
	c.seen[h] = until
	return true
}

// remove forgets key, so that a use that failed halfway can be retried.
func (c *onceCache) remove(key string) {
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, h)
}

// sidIndex maps the provider's session ids (the sid claim) to the gateway
// sessions started in them, so that a back-channel logout naming a sid
// ends exactly those sessions. It is bounded like onceCache (when full,
// new logins are simply not indexed, and a logout for them falls back to
// the user's sessions) and lives in this process.
type sidIndex struct {
	max int

	mu   sync.Mutex
	sids map[string]map[string]time.Time // sid -> session hash -> session expiry
	n    int
}

func newSIDIndex(max int) *sidIndex {
	return &sidIndex{max: max, sids: make(map[string]map[string]time.Time)}
}

func (x *sidIndex) add(sid, hash string, until, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.n >= x.max {
		x.sweep(now)
		if x.n >= x.max {
			return
		}
	}
	m := x.sids[sid]
	if m == nil {
		m = make(map[string]time.Time)
		x.sids[sid] = m
	}
	if _, ok := m[hash]; !ok {
		x.n++
	}
	m[hash] = until
}

// take removes sid and returns the hashes of its live sessions, and
// whether sid was known at all.
func (x *sidIndex) take(sid string, now time.Time) ([]string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m, ok := x.sids[sid]
	if !ok {
		return nil, false
	}
	delete(x.sids, sid)
	x.n -= len(m)
	var out []string
	for h, exp := range m {
		if now.Before(exp) {
			out = append(out, h)
		}
	}
	return out, true
}

// sweep must be called with x.mu held.
func (x *sidIndex) sweep(now time.Time) {
	for sid, m := range x.sids {
		for h, exp := range m {
			if !now.Before(exp) {
				delete(m, h)
				x.n--
			}
		}
		if len(m) == 0 {
			delete(x.sids, sid)
		}
	}
}
