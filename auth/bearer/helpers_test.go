package bearer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/clocktest"
	jose "github.com/go-jose/go-jose/v4"
)

// fakeClock is the verifier's clock in tests.
type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New(time.Now().Truncate(time.Second)) }

// testKey is a signing key with its key id.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	hmac []byte // an HMAC secret instead of priv
}

func (k testKey) public() crypto.PublicKey { return k.priv.Public() }

// jwk is the key's public JWK as a key set publishes it, stating its
// algorithm.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// testKeys are generated once per test binary: RSA key generation is
// slow under the race detector.
var testKeys = sync.OnceValue(func() map[string]testKey {
	return map[string]testKey{
		"rsa":         {kid: "rsa-1", alg: jose.RS256, priv: mustRSA(2048)},
		"rsa2":        {kid: "rsa-2", alg: jose.RS256, priv: mustRSA(2048)},
		"ec":          {kid: "ec-1", alg: jose.ES256, priv: mustEC(elliptic.P256())},
		"attackerRSA": {kid: "attacker-rsa", alg: jose.RS256, priv: mustRSA(2048)},
		"attackerEC":  {kid: "attacker-ec", alg: jose.ES256, priv: mustEC(elliptic.P256())},
	}
})

func key(name string) testKey { return testKeys()[name] }

// provider is an identity provider stand-in served over real TLS: an
// OpenID Connect discovery document and a key set the test can change,
// counting the key-set requests.
type provider struct {
	srv        *httptest.Server
	issuer     string
	keys       atomic.Pointer[jose.JSONWebKeySet]
	rawKeys    atomic.Pointer[[]byte] // served instead of keys when set
	down       atomic.Bool
	jwksDelay  atomic.Int64 // nanoseconds
	jwksHits   atomic.Int64
	discHits   atomic.Int64
	discIssuer atomic.Pointer[string] // issuer the document states, when set
}

func newProvider(t testing.TB, keys ...testKey) *provider {
	t.Helper()
	p := &provider{}
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	p.keys.Store(set)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discHits.Add(1)
		iss := p.issuer
		if s := p.discIssuer.Load(); s != nil {
			iss = *s
		}
		writeJSON(w, map[string]any{"issuer": iss, "jwks_uri": p.issuer + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		time.Sleep(time.Duration(p.jwksDelay.Load()))
		if raw := p.rawKeys.Load(); raw != nil {
			w.Header().Set("Content-Type", "application/json")
			w.Write(*raw)
			return
		}
		writeJSON(w, p.keys.Load())
	})
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	// The issuer is known before the server answers anything.
	p.issuer = "https://" + p.srv.Listener.Addr().String()
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// addKey publishes k too, as a provider does before it signs with a new
// key.
func (p *provider) addKey(k testKey) {
	old := p.keys.Load()
	set := &jose.JSONWebKeySet{Keys: append(append([]jose.JSONWebKey(nil), old.Keys...), k.jwk())}
	p.keys.Store(set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

const testAudience = "https://crm.example.com/api"

// issuerConfig is the provider as an issuer of the gateway.
func (p *provider) issuerConfig() IssuerConfig {
	return IssuerConfig{Issuer: p.issuer, Audience: testAudience}
}

// env is a started verifier of one provider.
type env struct {
	t     testing.TB
	p     *provider
	clock *fakeClock
	v     *Verifier
}

type envOpts struct {
	// edit adjusts the issuer's configuration.
	edit func(*IssuerConfig)
	// noWait returns before the keys are fetched.
	noWait bool
	// retry, when set, is the back-off of the key fetches.
	retry time.Duration
	// refresh, when set, is how often the key set is fetched again.
	refresh time.Duration
}

func newEnv(t testing.TB, p *provider, o envOpts) *env {
	t.Helper()
	e := &env{t: t, p: p, clock: newClock()}
	ic := p.issuerConfig()
	if o.edit != nil {
		o.edit(&ic)
	}
	v, err := New(Config{Issuers: []IssuerConfig{ic}}, p.srv.Client(), nil, e.clock.Now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, is := range v.order {
		if o.retry > 0 {
			is.keys.retryMin, is.keys.retryMax = o.retry, 4*o.retry
		}
		if o.refresh > 0 {
			is.keys.refreshEvery = o.refresh
		}
	}
	if err := v.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.v = v
	if !o.noWait {
		e.waitReady()
	}
	return e
}

func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !e.v.Ready() {
		if time.Now().After(deadline) {
			e.t.Fatal("verifier not ready after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// claims are a valid access token's claims at the env's time.
func (e *env) claims() map[string]any {
	now := e.clock.Now()
	return map[string]any{
		"iss":       e.p.issuer,
		"sub":       "svc-billing",
		"aud":       testAudience,
		"exp":       now.Add(5 * time.Minute).Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       "3b9e6f0c",
		"client_id": "billing-sync",
		"scope":     "contacts:read contacts:write",
		"roles":     []string{"crm.reader"},
	}
}

// claimsWith returns e.claims() with edit applied.
func (e *env) claimsWith(edit func(map[string]any)) map[string]any {
	c := e.claims()
	edit(c)
	return c
}

// signOpts shape a token's header.
type signOpts struct {
	alg      jose.SignatureAlgorithm // default: the key's
	typ      string
	noKid    bool
	kid      string // instead of the key's
	headers  map[string]any
	embedJWK bool
}

// sign signs claims with k as a compact JWS.
func sign(t testing.TB, k testKey, claims any, o signOpts) string {
	t.Helper()
	payload, ok := claims.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(claims); err != nil {
			t.Fatal(err)
		}
	}
	return signPayload(t, k, payload, o)
}

func signPayload(t testing.TB, k testKey, payload []byte, o signOpts) string {
	t.Helper()
	alg := o.alg
	if alg == "" {
		alg = k.alg
	}
	var sk any = k.priv
	if k.hmac != nil {
		sk = k.hmac
	}
	kid := k.kid
	if o.kid != "" {
		kid = o.kid
	}
	if !o.noKid {
		sk = jose.JSONWebKey{Key: sk, KeyID: kid}
	}
	opts := &jose.SignerOptions{EmbedJWK: o.embedJWK}
	if o.typ != "" {
		opts = opts.WithType(jose.ContentType(o.typ))
	}
	for name, v := range o.headers {
		opts = opts.WithHeader(jose.HeaderKey(name), v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, opts)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawJWT assembles a compact JWS from a header, claims and a signature of
// the caller's choice, for tokens no signer would make.
func rawJWT(t testing.TB, header map[string]any, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// wantErr checks that err wraps want (nil: no error).
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s = %v, want no error", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v, want %v", what, err, want)
	}
}
