package bearer

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// fetchTimeout bounds one discovery or key-set fetch.
	fetchTimeout = 10 * time.Second
	// retryMin and retryMax bound the back-off between fetch attempts
	// while the provider is unreachable.
	retryMin = time.Second
	retryMax = time.Minute
	// refreshEvery is how often a loaded key set is fetched again, so
	// that a key the provider withdraws stops being accepted.
	refreshEvery = 10 * time.Minute
	// maxDocumentBytes bounds a discovery document or key set.
	maxDocumentBytes = 1 << 20
	// maxKeys bounds the keys kept from one key set; a token without kid
	// is tried against each key of its type.
	maxKeys = 32
	// minRSABits refuses RSA keys too short to trust (NIST SP 800-131A).
	minRSABits = 2048
)

// keySet is one issuer's JSON Web Key Set (RFC 7517 §5), fetched from
// its jwks_uri and cached. It verifies signatures with its keys only,
// never with keys a token names or carries (jku, x5u, x5c, jwk). It is
// the oidc.KeySet of the issuer's go-oidc verifier.
type keySet struct {
	issuer   string
	jwksURL  string // configured; "" means discovered
	algs     []jose.SignatureAlgorithm
	cooldown time.Duration
	log      *slog.Logger
	now      func() time.Time

	retryMin, retryMax, refreshEvery time.Duration

	snap atomic.Pointer[keySnapshot] // nil until the first fetch succeeds
	poke chan struct{}

	mu           sync.Mutex
	base         context.Context // Start's; nil before Start
	client       *http.Client
	inflight     *fetchCall
	lastKidFetch time.Time // last fetch an unknown kid caused, by now
	lastErr      error     // of the last fetch; nil after a success
	discovered   string    // jwks_uri from discovery, until a fetch fails
}

var _ oidc.KeySet = (*keySet)(nil)

// keySnapshot is a fetched key set; it never changes once stored.
type keySnapshot struct {
	keys []jose.JSONWebKey
}

// fetchCall is a fetch in flight; everyone who needs it waits for it.
type fetchCall struct {
	done chan struct{}
	snap *keySnapshot // set on success
	err  error
}

func newKeySet(ic IssuerConfig, algs []jose.SignatureAlgorithm, log *slog.Logger, now func() time.Time) *keySet {
	return &keySet{
		issuer:       ic.Issuer,
		jwksURL:      ic.JWKSURL,
		algs:         algs,
		cooldown:     ic.RefreshCooldown,
		log:          log,
		now:          now,
		retryMin:     retryMin,
		retryMax:     retryMax,
		refreshEvery: refreshEvery,
		poke:         make(chan struct{}, 1),
	}
}

// start begins fetching in the background until ctx ends.
func (ks *keySet) start(ctx context.Context, client *http.Client) {
	ks.mu.Lock()
	ks.base, ks.client = ctx, client
	ks.mu.Unlock()
	go ks.run(ctx)
}

func (ks *keySet) current() *keySnapshot { return ks.snap.Load() }

// nudge asks the background loop to try now, while no keys are known.
func (ks *keySet) nudge() {
	select {
	case ks.poke <- struct{}{}:
	default:
	}
}

// run fetches the key set until ctx ends: at once, then with exponential
// back-off and jitter while the provider fails, and every refreshEvery
// once it answers. A failed fetch never drops keys already loaded.
func (ks *keySet) run(ctx context.Context) {
	delay := ks.retryMin
	loaded, failing := false, false
	for {
		last := time.Now()
		snap, err := ks.refresh(ctx, false, "")
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			level := slog.LevelDebug
			if !loaded || failing {
				level = slog.LevelInfo
			}
			ks.log.LogAttrs(ctx, level, "bearer: issuer keys fetched",
				slog.String("issuer", ks.issuer), slog.Int("keys", len(snap.keys)))
			loaded, failing, delay, wait = true, false, ks.retryMin, ks.refreshEvery
			// A nudge from while the keys were missing is answered.
			select {
			case <-ks.poke:
			default:
			}
		default:
			level := slog.LevelDebug
			if !failing {
				level = slog.LevelWarn
			}
			msg := "bearer: issuer keys unavailable; its tokens are refused (503) until they are fetched"
			if ks.current() != nil {
				msg = "bearer: issuer key refresh failed; keeping the keys fetched before"
			}
			ks.log.LogAttrs(ctx, level, msg, slog.String("issuer", ks.issuer), slog.Any("err", err))
			failing = true
			wait = jitter(delay)
			delay = min(delay*2, ks.retryMax)
		}
		if !ks.sleep(ctx, last, wait) {
			return
		}
	}
}

// sleep waits until last+wait, or until a nudge at least retryMin after
// last; it returns false when ctx ends.
func (ks *keySet) sleep(ctx context.Context, last time.Time, wait time.Duration) bool {
	for {
		t := time.NewTimer(time.Until(last.Add(wait)))
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
			return true
		case <-ks.poke:
			t.Stop()
			if time.Since(last) >= ks.retryMin {
				return true
			}
		}
	}
}

// jitter spreads replicas' retries over ±20 % of d.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// refresh fetches the key set, or joins the fetch in flight. A fetch for
// an unknown kid (byKid) happens at most once per cooldown: within it,
// refresh returns the current keys and the last fetch's error without
// fetching, so that tokens with made-up kids cannot make the gateway
// hammer the provider. The fetch runs under Start's context, not the
// caller's, since others may wait for it; the caller stops waiting when
// ctx ends.
func (ks *keySet) refresh(ctx context.Context, byKid bool, kid string) (*keySnapshot, error) {
	ks.mu.Lock()
	if c := ks.inflight; c != nil {
		ks.mu.Unlock()
		return ks.wait(ctx, c)
	}
	if ks.base == nil {
		ks.mu.Unlock()
		return nil, errors.New("not started")
	}
	if byKid {
		now := ks.now()
		if !ks.lastKidFetch.IsZero() && now.Sub(ks.lastKidFetch) < ks.cooldown {
			err := ks.lastErr
			ks.mu.Unlock()
			return ks.current(), err
		}
		ks.lastKidFetch = now
	}
	c := &fetchCall{done: make(chan struct{})}
	ks.inflight = c
	base, client := ks.base, ks.client
	ks.mu.Unlock()
	if byKid {
		// At most once per cooldown, so worth telling: it is a rotation
		// at the provider, or tokens signed with keys it never had.
		ks.log.LogAttrs(ctx, slog.LevelInfo, "bearer: fetching the key set for an unknown kid",
			slog.String("issuer", ks.issuer), slog.String("kid", truncate(kid, 64)))
	}

	go func() {
		snap, err := ks.fetch(base, client)
		if err == nil {
			ks.snap.Store(snap)
		}
		c.snap, c.err = snap, err
		ks.mu.Lock()
		ks.inflight = nil
		ks.lastErr = err
		ks.mu.Unlock()
		close(c.done)
	}()
	return ks.wait(ctx, c)
}

func (ks *keySet) wait(ctx context.Context, c *fetchCall) (*keySnapshot, error) {
	select {
	case <-c.done:
		if c.err != nil {
			return ks.current(), c.err
		}
		return c.snap, nil
	case <-ctx.Done():
		return ks.current(), ctx.Err()
	}
}

// fetch discovers the jwks_uri when none is configured, and fetches and
// parses the key set.
func (ks *keySet) fetch(ctx context.Context, client *http.Client) (*keySnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	u := ks.jwksURL
	if u == "" {
		ks.mu.Lock()
		u = ks.discovered
		ks.mu.Unlock()
		if u == "" {
			var err error
			if u, err = ks.discover(ctx, client); err != nil {
				return nil, err
			}
			ks.mu.Lock()
			ks.discovered = u
			ks.mu.Unlock()
		}
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	err := getJSON(ctx, client, u, &raw)
	var keys []jose.JSONWebKey
	if err == nil {
		keys, err = ks.usableKeys(ctx, raw.Keys)
	}
	if err != nil {
		if ks.jwksURL == "" {
			// The provider may have moved its keys: discover again.
			ks.mu.Lock()
			ks.discovered = ""
			ks.mu.Unlock()
		}
		return nil, fmt.Errorf("key set %s: %w", u, err)
	}
	return &keySnapshot{keys: keys}, nil
}

// discover reads the jwks_uri of the issuer's OpenID Connect discovery
// document (OpenID Connect Discovery 1.0 §4), whose issuer must be the
// configured one exactly (§4.3).
func (ks *keySet) discover(ctx context.Context, client *http.Client) (string, error) {
	wellKnown := strings.TrimSuffix(ks.issuer, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, wellKnown, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if doc.Issuer != ks.issuer {
		return "", fmt.Errorf("discovery: document is for issuer %q, not %q", doc.Issuer, ks.issuer)
	}
	if u, err := url.Parse(doc.JWKSURI); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("discovery: jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

// getJSON fetches a JSON document of at most maxDocumentBytes.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("HTTP status %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return err
	}
	if len(b) > maxDocumentBytes {
		return fmt.Errorf("larger than %d bytes", maxDocumentBytes)
	}
	return json.Unmarshal(b, v)
}

// usableKeys keeps the public signature keys of a key set: keys of
// unknown types, private or symmetric keys, encryption keys and short RSA
// keys are skipped (RFC 7517 §5 asks to ignore what is not understood).
// A set without any usable key is an error, so that it never replaces
// keys that work.
func (ks *keySet) usableKeys(ctx context.Context, raw []json.RawMessage) ([]jose.JSONWebKey, error) {
	var keys []jose.JSONWebKey
	for i, r := range raw {
		var k jose.JSONWebKey
		reason := ""
		switch err := k.UnmarshalJSON(r); {
		case err != nil:
			reason = err.Error()
		case !k.Valid() || !k.IsPublic():
			// A private key published by mistake is not used either:
			// the provider is misconfigured.
			reason = "not a valid public key"
		case k.Use != "" && k.Use != "sig":
			reason = "use is " + k.Use
		case len(keys) == maxKeys:
			reason = fmt.Sprintf("more than %d keys", maxKeys)
		default:
			if pk, ok := k.Key.(*rsa.PublicKey); ok && pk.N.BitLen() < minRSABits {
				reason = fmt.Sprintf("RSA key of %d bits", pk.N.BitLen())
			}
		}
		if reason != "" {
			ks.log.LogAttrs(ctx, slog.LevelDebug, "bearer: key skipped", slog.String("issuer", ks.issuer),
				slog.Int("index", i), slog.String("kid", k.KeyID), slog.String("reason", reason))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable signature keys")
	}
	return keys, nil
}

// match returns the keys that may have signed a token with kid and alg:
// those with that kid, or, without a kid, every key; in both cases only
// keys whose type (and alg, when the key states one) fits alg.
func (s *keySnapshot) match(kid, alg string) []*jose.JSONWebKey {
	var out []*jose.JSONWebKey
	for i := range s.keys {
		k := &s.keys[i]
		if (kid == "" || k.KeyID == kid) && keyFits(k, alg) {
			out = append(out, k)
		}
	}
	return out
}

func (s *keySnapshot) hasKid(kid string) bool {
	for i := range s.keys {
		if s.keys[i].KeyID == kid {
			return true
		}
	}
	return false
}

// keyFits reports whether alg may be used with k: RSA keys for RS* and
// PS*, each ECDSA curve for its one ES* (RFC 7518 §3.4), Ed25519 for
// EdDSA, and only the key's own alg when it states one (RFC 7517 §4.4).
func keyFits(k *jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pk := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pk.Curve == elliptic.P256()
		case "ES384":
			return pk.Curve == elliptic.P384()
		case "ES512":
			return pk.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// attempt carries one Verify call's parsed token to VerifySignature and
// the outcome back: go-oidc keeps only the text of a KeySet's error, and
// the caller needs to know which sentinel it was.
type attempt struct {
	raw     string
	jws     *jose.JSONWebSignature
	payload []byte       // verified
	snap    *keySnapshot // the key set payload verified with
	err     error
}

type attemptKey struct{}

// VerifySignature verifies jwt with the key its kid names (or, without a
// kid, each key of the right type) and returns the payload. A kid that no
// key has causes one fetch of the key set, subject to the cooldown.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil || a.raw != jwt {
		jws, err := jose.ParseSignedCompact(jwt, ks.algs)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		a = &attempt{raw: jwt, jws: jws}
	}
	a.payload, a.snap, a.err = ks.verify(ctx, a.jws)
	return a.payload, a.err
}

// verify returns jws's payload and the key set whose key verified it.
func (ks *keySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, *keySnapshot, error) {
	snap := ks.current()
	if snap == nil {
		ks.nudge()
		return nil, nil, fmt.Errorf("%w: keys of %s not fetched yet", ErrUnavailable, ks.issuer)
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, fmt.Errorf("%w: not exactly one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Header
	kid, alg := h.KeyID, h.Algorithm
	keys := snap.match(kid, alg)
	if len(keys) == 0 && kid != "" && !snap.hasKid(kid) {
		// The provider may have rotated its keys since the last fetch.
		s, err := ks.refresh(ctx, true, kid)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: key set for kid %.64q: %v", ErrUnavailable, kid, err)
		}
		if s != nil {
			snap, keys = s, s.match(kid, alg)
		}
	}
	if len(keys) == 0 {
		return nil, nil, fmt.Errorf("%w: no key of the issuer for kid %.64q and alg %s", ErrInvalidSignature, kid, alg)
	}
	for _, k := range keys {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, snap, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: signature does not verify", ErrInvalidSignature)
}

// truncate shortens s, which a token may have set, for logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
