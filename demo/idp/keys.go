package idp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// signingAlg is the one algorithm the provider signs with: RS256 is the one
// every OpenID Connect relying party must accept.
const signingAlg = jose.RS256

// rsaBits is the size of generated signing keys.
const rsaBits = 2048

// keyPair is one signing key and its life: retired is zero while it signs.
type keyPair struct {
	id      string
	priv    *rsa.PrivateKey
	created time.Time
	retired time.Time
}

// keyring holds the current signing key and the retired ones whose public
// keys must stay published until every token they signed has expired.
type keyring struct {
	now       func() time.Time
	rotation  time.Duration // zero: manual rotation only
	retention time.Duration // how long a retired key stays in the JWKS

	mu      sync.Mutex
	current *keyPair
	retired []*keyPair
}

func newKeyring(now func() time.Time, rotation, retention time.Duration) (*keyring, error) {
	k := &keyring{now: now, rotation: rotation, retention: retention}
	kp, err := newKeyPair(now())
	if err != nil {
		return nil, err
	}
	k.current = kp
	return k, nil
}

func newKeyPair(now time.Time) (*keyPair, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("idp: generate signing key: %w", err)
	}
	// The kid is the RFC 7638 thumbprint: stable and unique per key.
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("idp: key thumbprint: %w", err)
	}
	return &keyPair{id: base64.RawURLEncoding.EncodeToString(tp), priv: priv, created: now}, nil
}

// rotate makes a new key current and retires the old one.
func (k *keyring) rotate() error {
	kp, err := newKeyPair(k.now())
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.install(kp)
	return nil
}

// install must be called with k.mu held.
func (k *keyring) install(kp *keyPair) {
	k.current.retired = kp.created
	k.retired = append(k.retired, k.current)
	k.current = kp
}

// signing returns the current key, first rotating it when automatic rotation
// is due. The key is generated outside the lock, then the check is repeated
// so that concurrent signers rotate once.
func (k *keyring) signing() (*keyPair, error) {
	k.mu.Lock()
	due := k.rotation > 0 && k.now().Sub(k.current.created) >= k.rotation
	cur := k.current
	k.mu.Unlock()
	if !due {
		return cur, nil
	}
	kp, err := newKeyPair(k.now())
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current == cur {
		k.install(kp)
	}
	return k.current, nil
}

// published returns the current key and every retired key still within its
// retention, dropping the others for good.
func (k *keyring) published() []*keyPair {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	kept := k.retired[:0]
	for _, kp := range k.retired {
		if now.Before(kp.retired.Add(k.retention)) {
			kept = append(kept, kp)
		}
	}
	clear(k.retired[len(kept):])
	k.retired = kept
	out := make([]*keyPair, 0, len(kept)+1)
	out = append(out, k.current)
	return append(out, kept...)
}

// signingKey adapts a keyPair to op.SigningKey.
type signingKey struct{ kp *keyPair }

var _ op.SigningKey = signingKey{}

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return signingAlg }
func (s signingKey) Key() any                                    { return s.kp.priv }
func (s signingKey) ID() string                                  { return s.kp.id }

// publicKey adapts a keyPair to op.Key for the JWKS.
type publicKey struct{ kp *keyPair }

var _ op.Key = publicKey{}

func (p publicKey) ID() string                         { return p.kp.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return signingAlg }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.kp.priv.PublicKey }

// signer returns a JOSE signer for kp with the given typ header.
func (kp *keyPair) signer(typ string) (jose.Signer, error) {
	return jose.NewSigner(
		jose.SigningKey{Algorithm: signingAlg, Key: &jose.JSONWebKey{Key: kp.priv, KeyID: kp.id}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
}
