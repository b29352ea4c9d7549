package bearer

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// A flood of tokens with made-up kids must not make the gateway hammer the
// provider's key set.
func TestRefreshCooldown(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	e := newEnv(t, p, envOpts{})
	// A slow provider, so that many tokens arrive while a fetch is in
	// flight.
	p.jwksDelay.Store(int64(50 * time.Millisecond))

	const n = 1000
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = sign(t, key("attackerEC"), e.claims(), signOpts{kid: fmt.Sprintf("random-%d-%x", i, randomBytes(t, 8))})
	}
	before := p.jwksHits.Load()
	var wg sync.WaitGroup
	errs := make([]error, n)
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				_, errs[i] = e.v.Verify(t.Context(), tokens[i])
			}
		})
	}
	start := time.Now()
	for i := range tokens {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	fetches := p.jwksHits.Load() - before
	t.Logf("%d tokens with unknown kids in %s: %d key-set fetches", n, elapsed.Round(time.Millisecond), fetches)
	if fetches > 1 {
		t.Errorf("%d key-set fetches within the cooldown, want at most 1", fetches)
	}
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("Verify(token %d)", i), err, ErrInvalidSignature)
	}

	// Within the cooldown, none more; after it, one more.
	e.clock.Add(DefaultRefreshCooldown - time.Second)
	_, err := e.v.Verify(t.Context(), sign(t, key("attackerEC"), e.claims(), signOpts{kid: "another"}))
	wantErr(t, "Verify(unknown kid, within cooldown)", err, ErrInvalidSignature)
	if got := p.jwksHits.Load() - before; got != fetches {
		t.Errorf("key-set fetches within the cooldown = %d, want %d", got, fetches)
	}
	e.clock.Add(time.Second)
	_, err = e.v.Verify(t.Context(), sign(t, key("attackerEC"), e.claims(), signOpts{kid: "yet-another"}))
	wantErr(t, "Verify(unknown kid, after cooldown)", err, ErrInvalidSignature)
	if got := p.jwksHits.Load() - before; got != fetches+1 {
		t.Errorf("key-set fetches after the cooldown = %d, want %d", got, fetches+1)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// The provider rotates: it publishes a new key and signs with it.
func TestRotation(t *testing.T) {
	t.Parallel()
	for _, discovery := range []bool{true, false} {
		t.Run(fmt.Sprintf("discovery=%v", discovery), func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, key("rsa"))
			e := newEnv(t, p, envOpts{edit: func(c *IssuerConfig) {
				if !discovery {
					c.JWKSURL = p.issuer + "/jwks"
				}
			}})
			if !discovery && p.discHits.Load() != 0 {
				t.Errorf("discovery fetched %d times with jwks_url set", p.discHits.Load())
			}
			tok := sign(t, key("rsa2"), e.claims(), signOpts{})
			before := p.jwksHits.Load()
			_, err := e.v.Verify(t.Context(), tok)
			wantErr(t, "Verify(new key, not yet published)", err, ErrInvalidSignature)

			p.addKey(key("rsa2"))
			e.clock.Add(DefaultRefreshCooldown)
			if _, err := e.v.Verify(t.Context(), tok); err != nil {
				t.Fatalf("Verify(new key, published) = %v", err)
			}
			if _, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claims(), signOpts{})); err != nil {
				t.Errorf("Verify(old key) = %v", err)
			}
			if got := p.jwksHits.Load() - before; got != 2 {
				t.Errorf("key-set fetches = %d, want 2 (one per unknown kid, a cooldown apart)", got)
			}
			if _, err := e.v.Verify(t.Context(), tok); err != nil {
				t.Errorf("Verify(new key, again) = %v", err)
			}
			if got := p.jwksHits.Load() - before; got != 2 {
				t.Errorf("key-set fetches after a known kid = %d, want still 2", got)
			}
		})
	}
}

// The provider is down when the gateway starts: its tokens are refused
// with ErrUnavailable (a 503, the client retries), then accepted once it
// is up; keys are kept through a later outage.
func TestProviderDown(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	p.down.Store(true)
	e := newEnv(t, p, envOpts{noWait: true, retry: 20 * time.Millisecond})
	tok := sign(t, key("rsa"), e.claims(), signOpts{})
	for range 3 {
		_, err := e.v.Verify(t.Context(), tok)
		wantErr(t, "Verify(provider down)", err, ErrUnavailable)
		time.Sleep(30 * time.Millisecond)
	}
	if e.v.Ready() {
		t.Error("Ready() = true while the provider is down")
	}
	// Tokens of other issuers, and forged ones, are not unavailable.
	_, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claimsWith(func(c map[string]any) { c["iss"] = "https://elsewhere.example" }), signOpts{}))
	wantErr(t, "Verify(unknown issuer, provider down)", err, ErrUnknownIssuer)
	_, err = e.v.Verify(t.Context(), rawJWT(t, map[string]any{"alg": "none"}, e.claims(), nil))
	wantErr(t, "Verify(alg none, provider down)", err, ErrInvalidSignature)

	p.down.Store(false)
	e.waitReady()
	if _, err := e.v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify(provider up) = %v", err)
	}

	p.down.Store(true)
	e.clock.Add(DefaultRefreshCooldown)
	if _, err := e.v.Verify(t.Context(), tok); err != nil {
		t.Errorf("Verify(known key, provider down again) = %v", err)
	}
	_, err = e.v.Verify(t.Context(), sign(t, key("rsa2"), e.claims(), signOpts{}))
	wantErr(t, "Verify(unknown kid, provider down again)", err, ErrUnavailable)
	// Within the cooldown no fetch, but still unavailable: the kid may
	// be a new key the provider could not tell about.
	hits := p.jwksHits.Load()
	_, err = e.v.Verify(t.Context(), sign(t, key("rsa2"), e.claims(), signOpts{kid: "other"}))
	wantErr(t, "Verify(unknown kid, within cooldown of a failed fetch)", err, ErrUnavailable)
	if got := p.jwksHits.Load(); got != hits {
		t.Errorf("key-set fetches within the cooldown = %d, want %d", got, hits)
	}
	p.down.Store(false)
	e.clock.Add(DefaultRefreshCooldown)
	_, err = e.v.Verify(t.Context(), sign(t, key("rsa2"), e.claims(), signOpts{}))
	wantErr(t, "Verify(unknown kid, provider up)", err, ErrInvalidSignature)
}

// A discovery document for another issuer (a mix-up or a hijacked
// well-known path) is not trusted.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	other := "https://evil.example"
	p.discIssuer.Store(&other)
	e := newEnv(t, p, envOpts{noWait: true, retry: 10 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	if e.v.Ready() {
		t.Fatal("Ready() = true with a discovery document for another issuer")
	}
	if n := p.jwksHits.Load(); n != 0 {
		t.Errorf("key set fetched %d times", n)
	}
	_, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claims(), signOpts{}))
	wantErr(t, "Verify()", err, ErrUnavailable)
}

// Keys a verifier must not use: private, symmetric, encryption, short RSA
// and unknown key types; the usable ones still work.
func TestKeySetSkipsUnusableKeys(t *testing.T) {
	t.Parallel()
	short := testKey{kid: "rsa-1024", alg: jose.RS256, priv: mustRSA(1024)}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := testKey{kid: "ed-1", alg: jose.EdDSA, priv: edPriv}
	ec384 := testKey{kid: "ec384", alg: jose.ES384, priv: mustEC(elliptic.P384())}
	marshal := func(k jose.JSONWebKey) json.RawMessage {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	encKey := key("rsa2").jwk()
	encKey.Use = "enc"
	set := map[string]any{"keys": []json.RawMessage{
		marshal(jose.JSONWebKey{Key: key("attackerRSA").priv, KeyID: "private", Algorithm: "RS256"}),
		marshal(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct", Algorithm: "HS256"}),
		marshal(encKey),
		marshal(short.jwk()),
		json.RawMessage(`{"kty":"XYZ","kid":"unknown-type"}`),
		json.RawMessage(`"not a key"`),
		marshal(key("rsa").jwk()),
		marshal(ed.jwk()),
		marshal(ec384.jwk()),
	}}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t)
	p.rawKeys.Store(&raw)
	e := newEnv(t, p, envOpts{edit: func(c *IssuerConfig) { c.Algorithms = []string{"RS256", "ES384", "EdDSA"} }})
	for _, tt := range []struct {
		name string
		k    testKey
		o    signOpts
		want error
	}{
		{"usable RSA key", key("rsa"), signOpts{}, nil},
		{"usable Ed25519 key", ed, signOpts{}, nil},
		{"usable P-384 key", ec384, signOpts{}, nil},
		// A private key published by mistake must not vouch for tokens.
		{"published private key", key("attackerRSA"), signOpts{kid: "private"}, ErrInvalidSignature},
		{"encryption key", key("rsa2"), signOpts{}, ErrInvalidSignature},
		// Factorable RSA keys.
		{"1024-bit RSA key", short, signOpts{}, ErrInvalidSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.v.Verify(t.Context(), sign(t, tt.k, e.claims(), tt.o))
			wantErr(t, "Verify()", err, tt.want)
		})
	}
}

// A key set without a single usable key never replaces one that works.
func TestEmptyKeySetKeepsKeys(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	e := newEnv(t, p, envOpts{})
	raw := []byte(`{"keys":[]}`)
	p.rawKeys.Store(&raw)
	e.clock.Add(DefaultRefreshCooldown)
	_, err := e.v.Verify(t.Context(), sign(t, key("rsa2"), e.claims(), signOpts{}))
	wantErr(t, "Verify(unknown kid, empty key set)", err, ErrUnavailable)
	if _, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claims(), signOpts{})); err != nil {
		t.Errorf("Verify(known key) = %v", err)
	}
}

func TestStartTwice(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	e := newEnv(t, p, envOpts{})
	if err := e.v.Start(t.Context()); err == nil {
		t.Error("second Start() = nil, want an error")
	}
}

func TestStartBadCAFile(t *testing.T) {
	t.Parallel()
	v, err := New(Config{Issuers: []IssuerConfig{{Issuer: "https://idp.example", Audience: "api", CAFile: "/nonexistent/ca.pem"}}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(t.Context()); err == nil {
		t.Error("Start() with an unreadable ca_file = nil, want an error")
	}
}
