package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func genPEM(t testing.TB) []byte {
	t.Helper()
	b, err := GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func config(keys ...[]byte) Config {
	c := Config{Enabled: true, Issuer: "https://crm.example.com"}
	for _, k := range keys {
		c.Keys = append(c.Keys, secret.FromValue(k))
	}
	c.Defaults()
	return c
}

func newSigner(t testing.TB, now func() time.Time, keys ...[]byte) *Signer {
	t.Helper()
	c := config(keys...)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(c, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func user() *scope.Subject {
	return &scope.Subject{Kind: scope.KindUser, ID: "alice", Email: "alice@example.com",
		Roles: []string{"sales"}, Groups: []string{"emea"}, ACR: "mfa", AMR: []string{"pwd", "otp"},
		AuthTime: t0.Add(-time.Hour)}
}

// verify checks tok the way a CRM should: the published key set, the
// algorithms the keys allow, typ, iss, aud and the time window.
func verify(t *testing.T, jwks []byte, tok string, now time.Time) (Claims, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256})
	if err != nil {
		return Claims{}, err
	}
	h := jws.Signatures[0].Header
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return Claims{}, errNoKey
	}
	if keys[0].Algorithm != h.Algorithm {
		return Claims{}, errAlg
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return Claims{}, err
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return Claims{}, errTyp
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, err
	}
	if c.Issuer != "https://crm.example.com" || !slices.Contains(c.Audience, "crm") || now.Unix() < c.NotBefore || now.Unix() >= c.Expiry {
		return Claims{}, errClaims
	}
	return c, nil
}

type verr string

func (e verr) Error() string { return string(e) }

const (
	errNoKey  = verr("no such key")
	errAlg    = verr("algorithm does not match the key")
	errTyp    = verr("wrong typ")
	errClaims = verr("claims refused")
)

func TestSignAndVerify(t *testing.T) {
	for name, key := range map[string][]byte{
		"ES256":            genPEM(t),
		"EdDSA":            pkcs8(t, edKey()),
		"RS256":            pkcs8(t, must(rsa.GenerateKey(rand.Reader, 2048))),
		"SEC1 EC":          sec1(t),
		"PKCS1 RSA":        pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(must(rsa.GenerateKey(rand.Reader, 2048)))}),
		"trailing newline": append(genPEM(t), '\n', '\n'),
	} {
		t.Run(name, func(t *testing.T) {
			s := newSigner(t, func() time.Time { return t0 }, key)
			tok, err := s.Sign(user(), RequestInfo{ID: "req-1", Method: "GET", Path: "/api/contacts/7"})
			if err != nil {
				t.Fatal(err)
			}
			c, err := verify(t, s.JWKS(), tok, t0.Add(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "alice" || c.Kind != "user" || c.Email != "alice@example.com" || c.ACR != "mfa" ||
				!slices.Equal(c.AMR, []string{"pwd", "otp"}) || !slices.Equal(c.Roles, []string{"sales"}) || !slices.Equal(c.Groups, []string{"emea"}) ||
				c.AuthTime != t0.Add(-time.Hour).Unix() || c.RequestID != "req-1" || c.Method != "GET" || c.Path != "/api/contacts/7" ||
				c.IssuedAt != t0.Unix() || c.Expiry != t0.Add(time.Minute).Unix() || len(c.ID) < 20 {
				t.Errorf("claims %+v", c)
			}
			if _, err := verify(t, s.JWKS(), tok, t0.Add(time.Minute)); err == nil {
				t.Error("an assertion is accepted at its expiry")
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func edKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func sec1(t *testing.T) []byte {
	k := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(k))})
}

func TestEveryAssertionIsUnique(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	seen := map[string]bool{}
	for range 100 {
		tok, err := s.Sign(user(), RequestInfo{ID: "r", Method: "GET", Path: "/"})
		if err != nil {
			t.Fatal(err)
		}
		c, err := verify(t, s.JWKS(), tok, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %s repeated", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestKeyIDIsThumbprint(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	k := set.Keys[0]
	if !k.IsPublic() {
		t.Fatal("the key set publishes a private key")
	}
	tp, _ := k.Thumbprint(crypto.SHA256)
	if k.KeyID != base64.RawURLEncoding.EncodeToString(tp) || s.KeyID() != k.KeyID || k.Use != "sig" || k.Algorithm != "ES256" {
		t.Errorf("key %+v, signer kid %s", k, s.KeyID())
	}
	if strings.Contains(string(s.JWKS()), `"d"`) {
		t.Errorf("private parameter in the key set: %s", s.JWKS())
	}
}

// Rotation: the new key signs, the old one stays published, so assertions
// signed before the switch still verify.
func TestRotation(t *testing.T) {
	oldKey, newKey := genPEM(t), genPEM(t)
	before := newSigner(t, nil, oldKey)
	tokOld, _ := before.Sign(user(), RequestInfo{ID: "r", Method: "GET", Path: "/"})
	after := newSigner(t, nil, newKey, oldKey)
	tokNew, _ := after.Sign(user(), RequestInfo{ID: "r", Method: "GET", Path: "/"})
	for _, tok := range []string{tokOld, tokNew} {
		if _, err := verify(t, after.JWKS(), tok, time.Now()); err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if after.KeyID() == before.KeyID() {
		t.Error("the new key does not sign")
	}
	retired := newSigner(t, nil, newKey)
	if _, err := verify(t, retired.JWKS(), tokOld, time.Now()); err == nil {
		t.Error("an assertion of a removed key still verifies")
	}
}

// The attacks a CRM-side verifier must resist, checked against what the
// signer produces and publishes.
func TestAttacks(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	tok, _ := s.Sign(user(), RequestInfo{ID: "r", Method: "GET", Path: "/api/contacts"})
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding

	payload, _ := enc.DecodeString(parts[1])
	elevated := strings.Replace(string(payload), `"roles":["sales"]`, `"roles":["admin"]`, 1)
	header, _ := enc.DecodeString(parts[0])
	var hdr map[string]any
	_ = json.Unmarshal(header, &hdr)
	hdr["alg"] = "none"
	none, _ := json.Marshal(hdr)
	hdr["alg"] = "HS256"
	hs, _ := json.Marshal(hdr)

	attacker := newSigner(t, nil, genPEM(t))
	foreign, _ := attacker.Sign(&scope.Subject{Kind: scope.KindUser, ID: "mallory", Roles: []string{"admin"}}, RequestInfo{})

	for name, forged := range map[string]string{
		"elevated roles":          parts[0] + "." + enc.EncodeToString([]byte(elevated)) + "." + parts[2],
		"alg none":                enc.EncodeToString(none) + "." + parts[1] + ".",
		"alg HS256 with key text": enc.EncodeToString(hs) + "." + parts[1] + "." + parts[2],
		"signature stripped":      parts[0] + "." + parts[1] + ".",
		"another key":             foreign,
		"truncated":               tok[:len(tok)-4],
	} {
		if _, err := verify(t, s.JWKS(), forged, time.Now()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSignRefusesNoSubject(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	for _, sub := range []*scope.Subject{nil, {Kind: scope.KindAnonymous}, {Kind: scope.KindUser}} {
		if _, err := s.Sign(sub, RequestInfo{}); err == nil {
			t.Errorf("signed for %+v", sub)
		}
	}
}

func TestAPIKeySubject(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	tok, err := s.Sign(&scope.Subject{Kind: scope.KindAPIKey, ID: "k1", APIKey: &scope.APIKey{ID: "k1", Name: "n"}}, RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := verify(t, s.JWKS(), tok, time.Now())
	if err != nil || c.APIKeyID != "k1" || c.Kind != "api_key" || c.AuthTime != 0 {
		t.Errorf("%+v %v", c, err)
	}
}

func TestHandler(t *testing.T) {
	s := newSigner(t, nil, genPEM(t))
	for _, tt := range []struct {
		method string
		status int
		body   bool
	}{{"GET", 200, true}, {"HEAD", 200, false}, {"POST", 405, false}, {"DELETE", 405, false}} {
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(tt.method, "/.crmgate/jwks.json", nil))
		if w.Code != tt.status {
			t.Errorf("%s: %d", tt.method, w.Code)
		}
		if tt.status == 200 && (w.Header().Get("Content-Type") != "application/jwk-set+json" || !strings.Contains(w.Header().Get("Cache-Control"), "max-age")) {
			t.Errorf("%s: headers %v", tt.method, w.Header())
		}
		if got := w.Body.Len() > 0; tt.status == 200 && got != tt.body {
			t.Errorf("%s: body %q", tt.method, w.Body)
		}
	}
	if w := httptest.NewRecorder(); true {
		s.Handler().ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
		if w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("Allow %q", w.Header().Get("Allow"))
		}
	}
}

func TestValidate(t *testing.T) {
	good := genPEM(t)
	ecPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).PublicKey))})
	for name, tt := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no keys": {func(c *Config) { c.Keys = nil }, "keys: at least one"},
		"garbage": {func(c *Config) {
			c.Keys = []secret.Ref{secret.FromValue([]byte("not a key at all, just a long random-ish string"))}
		}, "keys[0]: not a PEM"},
		"public key": {func(c *Config) { c.Keys = []secret.Ref{secret.FromValue(ecPub)} }, "keys[0]: PEM block \"PUBLIC KEY\""},
		"P-384": {func(c *Config) {
			c.Keys = []secret.Ref{secret.FromValue(pkcs8(t, must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))))}
		}, "keys[0]: ECDSA keys must use curve P-256"},
		"RSA 1024": {func(c *Config) {
			c.Keys = []secret.Ref{secret.FromValue(pkcs8(t, must(rsa.GenerateKey(rand.Reader, 1024))))}
		}, "keys[0]: RSA keys must have at least 2048 bits"},
		"two blocks":  {func(c *Config) { c.Keys = []secret.Ref{secret.FromValue(append(genPEM(t), genPEM(t)...))} }, "keys[0]: more than one PEM block"},
		"duplicate":   {func(c *Config) { c.Keys = []secret.Ref{secret.FromValue(good), secret.FromValue(good)} }, "keys[1]: is the same key as keys[0]"},
		"http issuer": {func(c *Config) { c.Issuer = "http://crm.example.com" }, "issuer: must be"},
		"no issuer":   {func(c *Config) { c.Issuer = "" }, "issuer: must be"},
		"short ttl":   {func(c *Config) { c.TTL = time.Second }, "ttl: must be between 5s and 10m0s"},
		"long ttl":    {func(c *Config) { c.TTL = time.Hour }, "ttl: must be between"},
		"bad header":  {func(c *Config) { c.Header = "X CRM" }, "header: "},
		"empty aud":   {func(c *Config) { c.Audience = []string{""} }, "audience[0]: must not be empty"},
		"corrupt body": {func(c *Config) {
			c.Keys = []secret.Ref{secret.FromValue([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))}
		}, "keys[0]: parsing the private key"},
	} {
		t.Run(name, func(t *testing.T) {
			c := config(good)
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v; want %q", err, tt.want)
			}
		})
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("a disabled assertion is validated: %v", err)
	}
	if err := config(good).Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func BenchmarkSign(b *testing.B) {
	for name, key := range map[string][]byte{
		"ES256": genPEM(b),
		"EdDSA": pkcs8(b, edKey()),
	} {
		b.Run(name, func(b *testing.B) {
			s := newSigner(b, nil, key)
			sub := user()
			info := RequestInfo{ID: "0123456789abcdef0123456789abcdef", Method: "GET", Path: "/api/contacts/7"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(sub, info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(genPEM(f))
	f.Add(pkcs8(f, edKey()))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKey(b)
		if err != nil {
			return
		}
		if k.KeyID == "" || k.Algorithm == "" || !k.Valid() {
			t.Fatalf("accepted key without id or algorithm: %+v", k)
		}
	})
}
