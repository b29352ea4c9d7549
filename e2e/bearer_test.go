package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// issuer is a machine-client identity provider as the gateway meets it:
// a JWKS over TLS, and tokens it signs.
type issuer struct {
	srv     *httptest.Server
	key     *ecdsa.PrivateKey
	kid     string
	fetches atomic.Int64
	caFile  string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{kid: "k1"}
	var err error
	if is.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		is.fetches.Add(1)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &is.key.PublicKey, KeyID: is.kid, Algorithm: "ES256", Use: "sig"}}}
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(is.srv.Close)
	is.caFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
	if err := os.WriteFile(is.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

func (is *issuer) token(t *testing.T, claims map[string]any, hdr map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	for k, v := range hdr {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: is.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func (is *issuer) claims(mod func(map[string]any)) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": is.srv.URL, "aud": "crm-api", "sub": "etl-job", "client_id": "etl-job",
		"iat": now, "nbf": now, "exp": now + 300, "scope": "contacts:read deals:read", "roles": []string{"sync"}}
	if mod != nil {
		mod(c)
	}
	return c
}

// Bearer access tokens of machine clients through the real binary: a
// valid token identifies the client; the attacks a token forger tries are
// refused with 401 invalid_token.
func TestBearerTokens(t *testing.T) {
	d := startDemo(t)
	is := newIssuer(t)
	r := startReplica(t, d, func(c string) string {
		return c + fmt.Sprintf(`
bearer:
  issuers:
    - issuer: %q
      audience: crm-api
      jwks_url: %q
      algorithms: [ES256]
      subject_claim: client_id
      ca_file: %q
`, is.srv.URL, is.srv.URL+"/jwks", is.caFile)
	})
	get := func(tok string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", r.URL+"/api/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := d.client.Do(req)
		if err != nil && len(tok) > 64<<10 && strings.Contains(err.Error(), "connection reset") {
			// The gateway answered 431 and closed while the client was
			// still writing the head: the client sees the reset first.
			return &http.Response{StatusCode: 431, Header: http.Header{}}, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}

	res, body := get(is.token(t, is.claims(nil), nil))
	if res.StatusCode != 200 {
		t.Fatalf("valid token: %d %s", res.StatusCode, body)
	}
	if s := decodeSeen(t, body); s.User != "etl-job" || s.Roles != "sync" || len(s.Headers["Authorization"]) != 0 {
		t.Errorf("CRM saw user %q roles %q authorization %q", s.User, s.Roles, s.Headers["Authorization"])
	}

	enc := base64.RawURLEncoding
	valid := is.token(t, is.claims(nil), nil)
	parts := strings.Split(valid, ".")
	pub, _ := x509.MarshalPKIXPublicKey(&is.key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hs := func(secret []byte) string {
		h := enc.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"at+jwt"}`))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + enc.EncodeToString(m.Sum(nil))
	}
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attackerJWK, _ := json.Marshal(jose.JSONWebKey{Key: &attacker.PublicKey, KeyID: "k1"})
	nested := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)

	for name, tok := range map[string]string{
		"alg none":             enc.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".",
		"alg NoNe":             enc.EncodeToString([]byte(`{"alg":"NoNe","kid":"k1"}`)) + "." + parts[1] + ".",
		"HS256 with the PEM":   hs(pubPEM),
		"HS256 with the DER":   hs(pub),
		"wrong audience":       is.token(t, is.claims(func(c map[string]any) { c["aud"] = "other-api" }), nil),
		"audience array":       is.token(t, is.claims(func(c map[string]any) { c["aud"] = []string{"other-api", "more"} }), nil),
		"foreign issuer":       is.token(t, is.claims(func(c map[string]any) { c["iss"] = "https://evil.example" }), nil),
		"no exp":               is.token(t, is.claims(func(c map[string]any) { delete(c, "exp") }), nil),
		"expired":              is.token(t, is.claims(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), nil),
		"not yet valid":        is.token(t, is.claims(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), nil),
		"an ID token":          is.token(t, is.claims(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }), nil),
		"tampered payload":     parts[0] + "." + enc.EncodeToString([]byte(strings.Replace(string(must(enc.DecodeString(parts[1]))), `"sync"`, `"admin"`, 1))) + "." + parts[2],
		"jwk header":           signWith(t, attacker, "k1", map[jose.HeaderKey]any{"jwk": json.RawMessage(attackerJWK)}, is.claims(nil)),
		"jku header":           signWith(t, attacker, "k9", map[jose.HeaderKey]any{"jku": is.srv.URL + "/evil"}, is.claims(nil)),
		"unknown kid":          signWith(t, attacker, "k9", nil, is.claims(nil)),
		"deeply nested claims": is.token(t, is.claims(func(c map[string]any) { c["x"] = json.RawMessage(nested) }), nil),
		"1 MB token":           strings.Repeat("a", 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			res, body := get(tok)
			if name == "1 MB token" && (res.StatusCode == 431 || res.StatusCode == 400) {
				return // refused before the gateway reads it as a token
			}
			if res.StatusCode != 401 || !strings.Contains(res.Header.Get("Www-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%d %q %s", res.StatusCode, res.Header.Get("Www-Authenticate"), body)
			}
		})
	}
	if n := is.fetches.Load(); n > 3 {
		t.Errorf("the key set was fetched %d times: unknown kids must not make the gateway hammer the issuer", n)
	}
}

func signWith(t *testing.T, k *ecdsa.PrivateKey, kid string, hdr map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	for name, v := range hdr {
		opts = opts.WithHeader(name, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
