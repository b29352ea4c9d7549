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
//
// A provider session usually has one gateway session, so each sid holds a
// short slice rather than a map, which would cost several hundred bytes
// per sign-in.
type sidIndex struct {
	max int

	mu   sync.Mutex
	sids map[string][]sidSession
	n    int
}

// sidSession is one gateway session of a provider session.
type sidSession struct {
	hash  string
	until time.Time // the session's expiry
}

func newSIDIndex(max int) *sidIndex {
	return &sidIndex{max: max, sids: make(map[string][]sidSession)}
}

// add indexes the new session hash under sid. A session is added once,
// when it starts (its hash is new), so there is nothing to deduplicate.
func (x *sidIndex) add(sid, hash string, until, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.n >= x.max {
		x.sweep(now)
		if x.n >= x.max {
			return
		}
	}
	x.sids[sid] = append(x.sids[sid], sidSession{hash: hash, until: until})
	x.n++
}

// take removes sid and returns the hashes of its live sessions, and
// whether sid was known at all.
func (x *sidIndex) take(sid string, now time.Time) ([]string, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ss, ok := x.sids[sid]
	if !ok {
		return nil, false
	}
	delete(x.sids, sid)
	x.n -= len(ss)
	var out []string
	for _, s := range ss {
		if now.Before(s.until) {
			out = append(out, s.hash)
		}
	}
	return out, true
}

// sweep must be called with x.mu held.
func (x *sidIndex) sweep(now time.Time) {
	for sid, ss := range x.sids {
		live := ss[:0]
		for _, s := range ss {
			if now.Before(s.until) {
				live = append(live, s)
			}
		}
		x.n -= len(ss) - len(live)
		if len(live) == 0 {
			delete(x.sids, sid)
			continue
		}
		clear(ss[len(live):])
		x.sids[sid] = live
	}
}
