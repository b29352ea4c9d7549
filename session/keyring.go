package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/crmgate/crmgate/secret"
)

// HKDF info strings (RFC 5869 §3.2): one per subkey, so that the
// encryption, cookie-MAC and storage-key subkeys are independent even though
// they come from one configured secret.
const (
	infoKeyID   = "crmgate session v1 key id"
	infoEncrypt = "crmgate session v1 aes-256-gcm"
	infoCookie  = "crmgate session v1 cookie hmac-sha256"
	infoStorage = "crmgate session v1 storage-key hmac-sha256"
)

// sealVersion is the first byte of every sealed record.
const sealVersion = 1

const (
	kidLen      = 4
	nonceLen    = 12
	sealHeadLen = 1 + kidLen + nonceLen
)

var (
	errUnknownKey = errors.New("sealed under a key that is not in the ring")
	errMalformed  = errors.New("malformed sealed record")
)

// ringKey is one configured key and its derived subkeys.
type ringKey struct {
	id   uint32
	aead cipher.AEAD
	// The pools keep keyed HMAC states: both MACs are computed on every
	// request, and a keyed state is costly to set up.
	cookieMACs  sync.Pool
	storageMACs sync.Pool
}

// keyRing holds the configured keys; keys[0] is active. It is immutable.
type keyRing struct {
	keys []*ringKey
}

func newKeyRing(secrets [][]byte) (*keyRing, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session: the key ring needs at least one key")
	}
	ring := &keyRing{}
	seen := map[uint32]int{}
	for i, s := range secrets {
		if len(s) < MinKeyBytes {
			return nil, fmt.Errorf("session: key %d is %d bytes, at least %d are required", i, len(s), MinKeyBytes)
		}
		k, err := deriveKey(s)
		if err != nil {
			return nil, fmt.Errorf("session: key %d: %w", i, err)
		}
		if j, dup := seen[k.id]; dup {
			return nil, fmt.Errorf("session: key %d has the same key id as key %d (the same key twice?)", i, j)
		}
		seen[k.id] = i
		ring.keys = append(ring.keys, k)
	}
	return ring, nil
}

// newKeyRingFromRefs builds the ring from resolved secret references.
func newKeyRingFromRefs(refs []secret.Ref) (*keyRing, error) {
	secrets := make([][]byte, len(refs))
	for i, r := range refs {
		if r.Value() == nil {
			return nil, fmt.Errorf("session: key %d (%s) is not resolved", i, r)
		}
		secrets[i] = r.Value()
	}
	return newKeyRing(secrets)
}

func deriveKey(s []byte) (*ringKey, error) {
	idb, err := hkdf.Key(sha256.New, s, nil, infoKeyID, kidLen)
	if err != nil {
		return nil, err
	}
	enc, err := hkdf.Key(sha256.New, s, nil, infoEncrypt, 32)
	if err != nil {
		return nil, err
	}
	ck, err := hkdf.Key(sha256.New, s, nil, infoCookie, 32)
	if err != nil {
		return nil, err
	}
	sk, err := hkdf.Key(sha256.New, s, nil, infoStorage, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &ringKey{id: binary.BigEndian.Uint32(idb), aead: aead}
	k.cookieMACs.New = func() any { return hmac.New(sha256.New, ck) }
	k.storageMACs.New = func() any { return hmac.New(sha256.New, sk) }
	return k, nil
}

func (r *keyRing) active() *ringKey { return r.keys[0] }

func (r *keyRing) byID(id uint32) *ringKey {
	for _, k := range r.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// mac computes HMAC-SHA256 over the parts with a pooled keyed state.
func mac(pool *sync.Pool, dst []byte, parts ...[]byte) []byte {
	h := pool.Get().(hash.Hash)
	h.Reset()
	for _, p := range parts {
		h.Write(p)
	}
	dst = h.Sum(dst)
	pool.Put(h)
	return dst
}

// Domain separation of the storage-key HMAC inputs: a session id and a user
// id can never produce the same storage key.
var (
	storageSessionTag = []byte("sid\x00")
	storageUserTag    = []byte("uid\x00")
)

// storageKey is the key a session is stored under: hex of an HMAC of its
// id under the storage subkey of the key that issued it. It is what logs,
// List and the admin API show as the session's hash.
func (r *keyRing) storageKey(id ID) (string, bool) {
	k := r.byID(id.kid)
	if k == nil {
		return "", false
	}
	var buf [sha256.Size]byte
	sum := mac(&k.storageMACs, buf[:0], storageSessionTag, id.raw[:])
	return hex.EncodeToString(sum), true
}

// userKey is the per-user index key of userID under the key k.
func (k *ringKey) userKey(userID string) string {
	var buf [sha256.Size]byte
	sum := mac(&k.storageMACs, buf[:0], storageUserTag, []byte(userID))
	return hex.EncodeToString(sum)
}

// aad binds a sealed record to its storage key and version.
func aad(storageKey string, version uint64) []byte {
	b := make([]byte, 0, len("crmgate session v1\x00")+len(storageKey)+9)
	b = append(b, "crmgate session v1\x00"...)
	b = append(b, storageKey...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, version)
}

// seal encrypts plaintext under the active key: version byte, key id,
// nonce, then the GCM ciphertext and tag.
func (r *keyRing) seal(storageKey string, version uint64, plaintext []byte) []byte {
	return r.sealTo(nil, storageKey, version, plaintext)
}

// sealTo is seal into dst's memory (from its start) when it is large
// enough; dst must not overlap plaintext.
func (r *keyRing) sealTo(dst []byte, storageKey string, version uint64, plaintext []byte) []byte {
	k := r.active()
	out := dst[:0]
	if n := sealHeadLen + len(plaintext) + k.aead.Overhead(); cap(out) < n {
		out = make([]byte, 0, n)
	}
	out = out[:sealHeadLen]
	out[0] = sealVersion
	binary.BigEndian.PutUint32(out[1:], k.id)
	// A random nonce per seal; see the package comment for the key's limit.
	rand.Read(out[1+kidLen : sealHeadLen])
	return k.aead.Seal(out, out[1+kidLen:sealHeadLen], plaintext, aad(storageKey, version))
}

// open decrypts a sealed record with whichever ring key sealed it.
func (r *keyRing) open(storageKey string, version uint64, sealed []byte) ([]byte, error) {
	if len(sealed) < sealHeadLen || sealed[0] != sealVersion {
		return nil, errMalformed
	}
	k := r.byID(binary.BigEndian.Uint32(sealed[1:]))
	if k == nil {
		return nil, errUnknownKey
	}
	pt, err := k.aead.Open(nil, sealed[1+kidLen:sealHeadLen], sealed[sealHeadLen:], aad(storageKey, version))
	if err != nil {
		return nil, errMalformed
	}
	return pt, nil
}

// sealedKeyID reports the key id a sealed record names.
func sealedKeyID(sealed []byte) (uint32, bool) {
	if len(sealed) < sealHeadLen || sealed[0] != sealVersion {
		return 0, false
	}
	return binary.BigEndian.Uint32(sealed[1:]), true
}
