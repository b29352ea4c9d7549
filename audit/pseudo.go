package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// PseudonymPrefix starts every pseudonymised identifier, so a reader
// knows the value is not the identifier itself.
const PseudonymPrefix = "hmac:"

// pseudonymiser replaces subject identifiers by their keyed HMAC-SHA256
// (RFC 2104), truncated to 128 bits and hex-encoded: the same identifier
// gives the same pseudonym within a deployment, so one person's events
// still line up, while without the key the identifier cannot be
// recovered or confirmed by guessing.
type pseudonymiser struct {
	pool sync.Pool // hash.Hash keyed with the deployment key
}

func newPseudonymiser(key []byte) *pseudonymiser {
	if len(key) == 0 {
		return nil
	}
	k := append([]byte(nil), key...)
	p := &pseudonymiser{}
	p.pool.New = func() any { return hmac.New(sha256.New, k) }
	return p
}

// apply returns the pseudonym of s; a nil pseudonymiser returns s.
func (p *pseudonymiser) apply(s string) string {
	if p == nil || s == "" {
		return s
	}
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(s))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	p.pool.Put(h)
	return PseudonymPrefix + hex.EncodeToString(sum[:16])
}

// Pseudonym returns the pseudonym the pipeline records for id under key:
// what an investigator with the key computes to find one person's events.
func Pseudonym(key []byte, id string) string {
	return newPseudonymiser(key).apply(id)
}
