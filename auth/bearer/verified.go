package bearer

import (
	"crypto/sha256"
	"sync"
)

// verifiedEntries bounds the tokens a verifier remembers as verified.
// When it is full the memory is cleared and refills from the tokens in
// use: a client reuses its token until it expires, so a few thousand
// entries cover many clients, and only tokens whose signature verified
// ever take a place.
const verifiedEntries = 4096

// verifiedTokens remembers the tokens whose signature (and iss and aud,
// which go-oidc checks with it) verified, with the issuer's key set they
// verified with and their parsed form, so that a client sending the same
// token again costs neither a signature check nor a parse: an ES256 or
// RS256 verification is most of a bearer request's identification cost.
// An entry holds only while its issuer's current key set is the one the
// token verified with; every fetch of the key set (at least every 10
// minutes, and on an unknown kid) makes a new one, so a key the provider
// withdraws stops being accepted then, exactly as without this memory.
// The time-dependent checks (exp, nbf, iat) and the mapping to the
// subject run on every request. Tokens are found by their SHA-256, so
// nothing here is a usable token. Safe for concurrent use.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[tokenKey]verifiedToken
}

// verifiedToken is one remembered token; immutable.
type verifiedToken struct {
	is   *issuer
	t    *rawToken
	snap *keySnapshot
}

// tokenKey is what a token is remembered by.
type tokenKey = [sha256.Size]byte

func keyOf(raw string) tokenKey { return sha256.Sum256([]byte(raw)) }

// get returns the entry of the token with key k if its issuer's key set
// is still the one it verified with.
func (v *verifiedTokens) get(k tokenKey) (verifiedToken, bool) {
	v.mu.RLock()
	e, ok := v.m[k]
	v.mu.RUnlock()
	if !ok || e.snap == nil || e.snap != e.is.keys.current() {
		return verifiedToken{}, false
	}
	return e, true
}

// add remembers that the token with key k, parsed as e.t, verified with
// e.snap.
func (v *verifiedTokens) add(k tokenKey, e verifiedToken) {
	if e.snap == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= verifiedEntries {
		v.m = make(map[tokenKey]verifiedToken, 64)
	}
	v.m[k] = e
}

// clear forgets every token.
func (v *verifiedTokens) clear() {
	v.mu.Lock()
	v.m = nil
	v.mu.Unlock()
}

// len is how many tokens are remembered, for tests.
func (v *verifiedTokens) len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.m)
}
