package bearer

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/scope"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"), key("ec"))
	wantSubject := func(e *env) *scope.Subject {
		return &scope.Subject{
			Kind: scope.KindService, ID: "svc-billing", Roles: []string{"crm.reader"},
			Claims: map[string]any{"iss": e.p.issuer, "scopes": []string{"contacts:read", "contacts:write"}, "client_id": "billing-sync"},
		}
	}
	for _, tt := range []struct {
		name  string
		edit  func(*IssuerConfig)
		token func(e *env) string
		want  func(e *env) *scope.Subject
	}{
		{
			name:  "RS256 with kid",
			token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{}) },
			want:  wantSubject,
		},
		{
			name:  "ES256 with kid",
			token: func(e *env) string { return sign(e.t, key("ec"), e.claims(), signOpts{}) },
			want:  wantSubject,
		},
		{
			name:  "no kid: every key of the type is tried",
			token: func(e *env) string { return sign(e.t, key("ec"), e.claims(), signOpts{noKid: true}) },
			want:  wantSubject,
		},
		{
			name: "expired within the leeway",
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-20 * time.Second).Unix() }), signOpts{})
			},
			want: wantSubject,
		},
		{
			name: "aud array with ours, typ at+jwt",
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) { c["aud"] = []string{"https://other.example", testAudience} }), signOpts{typ: "at+jwt"})
			},
			want: wantSubject,
		},
		{
			name: "required type, spelled differently",
			edit: func(c *IssuerConfig) { c.RequireType = "at+jwt" },
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claims(), signOpts{typ: "application/AT+JWT"})
			},
			want: wantSubject,
		},
		{
			name: "scp array, no scope, no roles",
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) {
					delete(c, "scope")
					delete(c, "roles")
					c["scp"] = []string{"contacts:read", "", "contacts:read", "export"}
				}), signOpts{})
			},
			want: func(e *env) *scope.Subject {
				return &scope.Subject{Kind: scope.KindService, ID: "svc-billing",
					Claims: map[string]any{"iss": e.p.issuer, "scopes": []string{"contacts:read", "export"}, "client_id": "billing-sync"}}
			},
		},
		{
			name: "client-credentials token: subject from azp, roles at a path, mapped",
			edit: func(c *IssuerConfig) {
				c.SubjectClaim = "azp"
				c.RolesClaim = "realm_access.roles"
				c.RolesMap = map[string]string{"crm-reader": "reader", "crm-writer": "writer"}
			},
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) {
					delete(c, "sub")
					delete(c, "client_id")
					delete(c, "roles")
					c["azp"] = "billing-sync"
					c["scope"] = ""
					c["realm_access"] = map[string]any{"roles": []string{"offline_access", "crm-reader", "crm-writer", "crm-reader"}}
				}), signOpts{})
			},
			want: func(e *env) *scope.Subject {
				return &scope.Subject{Kind: scope.KindService, ID: "billing-sync", Roles: []string{"reader", "writer"},
					Claims: map[string]any{"iss": e.p.issuer, "scopes": []string{}, "azp": "billing-sync"}}
			},
		},
		{
			name: "namespaced roles claim found whole",
			edit: func(c *IssuerConfig) { c.RolesClaim = "https://crm.example.com/roles" },
			token: func(e *env) string {
				return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) { c["https://crm.example.com/roles"] = "crm.reader" }), signOpts{})
			},
			want: wantSubject,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, p, envOpts{edit: tt.edit})
			tok := tt.token(e)
			got, err := e.v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if d := cmp.Diff(got, tt.want(e)); d != "" {
				t.Errorf("Verify() (-got +want):\n%s", d)
			}
		})
	}
}

// countingServer is a server an attacker controls; it counts requests.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T) *countingServer {
	s := &countingServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key("attackerRSA").jwk(), key("attackerEC").jwk()}})
	}))
	t.Cleanup(s.Close)
	return s
}

func selfSigned(t testing.TB, k testKey) string {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.public(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestVerifyAttacks(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"), key("ec"))
	attacker := newCountingServer(t)
	rsaPub := key("rsa").public().(*rsa.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaPub)})
	jwkJSON, err := json.Marshal(key("rsa").jwk())
	if err != nil {
		t.Fatal(err)
	}
	hmacWith := func(secret []byte) testKey {
		return testKey{kid: "rsa-1", alg: jose.HS256, hmac: secret}
	}
	none := func(alg string) func(e *env) string {
		return func(e *env) string {
			return rawJWT(e.t, map[string]any{"alg": alg, "typ": "JWT", "kid": "rsa-1"}, e.claims(), nil)
		}
	}
	withClaims := func(k string, edit func(e *env, c map[string]any)) func(e *env) string {
		return func(e *env) string {
			return sign(e.t, key(k), e.claimsWith(func(c map[string]any) { edit(e, c) }), signOpts{})
		}
	}
	nested := func(depth int) any {
		var v any = "x"
		for range depth {
			v = []any{v}
		}
		return v
	}

	for _, tt := range []struct {
		name  string
		edit  func(*IssuerConfig)
		token func(e *env) string
		want  error
	}{
		// Unsigned tokens (alg none, CVE-2015-9235 and its case variants).
		{name: "alg none", token: none("none"), want: ErrInvalidSignature},
		{name: "alg None", token: none("None"), want: ErrInvalidSignature},
		{name: "alg NONE", token: none("NONE"), want: ErrInvalidSignature},
		{name: "alg nOnE", token: none("nOnE"), want: ErrInvalidSignature},
		{name: "alg none with a signature", token: func(e *env) string {
			return rawJWT(e.t, map[string]any{"alg": "none"}, e.claims(), []byte("sig"))
		}, want: ErrInvalidSignature},
		// Algorithm confusion: HS256 keyed with the issuer's RSA public key (PEM, PKIX).
		{name: "HS256 with public key PEM", token: func(e *env) string { return sign(e.t, hmacWith(pemPKIX), e.claims(), signOpts{}) }, want: ErrInvalidSignature},
		// Algorithm confusion: HS256 keyed with the issuer's RSA public key (PEM, PKCS #1).
		{name: "HS256 with public key PKCS1 PEM", token: func(e *env) string { return sign(e.t, hmacWith(pemPKCS1), e.claims(), signOpts{}) }, want: ErrInvalidSignature},
		// Algorithm confusion: HS256 keyed with the issuer's JWK bytes.
		{name: "HS256 with public JWK", token: func(e *env) string { return sign(e.t, hmacWith(jwkJSON), e.claims(), signOpts{}) }, want: ErrInvalidSignature},
		// Signature stripped, alg kept.
		{name: "RS256 without signature", token: func(e *env) string {
			tok := sign(e.t, key("rsa"), e.claims(), signOpts{})
			return tok[:strings.LastIndexByte(tok, '.')+1]
		}, want: ErrInvalidSignature},
		// Claims changed after signing (privilege escalation).
		{name: "tampered claims", token: func(e *env) string {
			parts := strings.Split(sign(e.t, key("rsa"), e.claims(), signOpts{}), ".")
			forged, _ := json.Marshal(e.claimsWith(func(c map[string]any) { c["roles"] = []string{"crm.admin"} }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
		}, want: ErrInvalidSignature},
		// Forgery with the attacker's key under the issuer's kid.
		{name: "attacker key with our kid", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{kid: "rsa-1"})
		}, want: ErrInvalidSignature},
		// Forgery under a kid the issuer never had.
		{name: "unknown kid", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{kid: "rotated-maybe"})
		}, want: ErrInvalidSignature},
		// Key-type confusion: ES256 under the kid of an RSA key.
		{name: "ES256 under an RSA kid", token: func(e *env) string {
			return sign(e.t, key("attackerEC"), e.claims(), signOpts{kid: "rsa-1"})
		}, want: ErrInvalidSignature},
		// Algorithm substitution: PS256 with a key the key set binds to RS256.
		{name: "PS256 with an RS256 key", edit: func(c *IssuerConfig) { c.Algorithms = []string{"RS256", "PS256"} },
			token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{alg: jose.PS256}) }, want: ErrInvalidSignature},
		// Algorithm downgrade to one the issuer is not configured for.
		{name: "ES256 not configured", edit: func(c *IssuerConfig) { c.Algorithms = []string{"RS256"} },
			token: func(e *env) string { return sign(e.t, key("ec"), e.claims(), signOpts{}) }, want: ErrInvalidSignature},
		// Key injection: jku pointing at the attacker's key set.
		{name: "jku header", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{headers: map[string]any{"jku": attacker.URL + "/jwks"}})
		}, want: ErrInvalidSignature},
		// Key injection: x5u pointing at the attacker's certificate.
		{name: "x5u header", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{headers: map[string]any{"x5u": attacker.URL + "/cert.pem"}})
		}, want: ErrInvalidSignature},
		// Key injection: the attacker's certificate inline (x5c).
		{name: "x5c header", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{noKid: true, headers: map[string]any{"x5c": []string{selfSigned(e.t, key("attackerRSA"))}}})
		}, want: ErrInvalidSignature},
		// Key injection: the attacker's public key inline (jwk, CVE-2018-0114).
		{name: "jwk header", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{noKid: true, embedJWK: true})
		}, want: ErrInvalidSignature},
		// Key injection: inline jwk under the issuer's kid.
		{name: "jwk header with our kid", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claims(), signOpts{kid: "rsa-1", embedJWK: true})
		}, want: ErrInvalidSignature},
		// Token of an issuer the gateway does not trust, signed with its own key.
		{name: "foreign issuer", token: func(e *env) string {
			return sign(e.t, key("attackerRSA"), e.claimsWith(func(c map[string]any) { c["iss"] = attacker.URL }), signOpts{headers: map[string]any{"jku": attacker.URL}})
		}, want: ErrUnknownIssuer},
		// Issuer spelled almost like ours.
		{name: "issuer with trailing slash", token: withClaims("rsa", func(e *env, c map[string]any) { c["iss"] = e.p.issuer + "/" }), want: ErrUnknownIssuer},
		{name: "iss not a string", token: withClaims("rsa", func(e *env, c map[string]any) { c["iss"] = []string{e.p.issuer} }), want: ErrMalformed},
		// Token minted for another API.
		{name: "wrong aud", token: withClaims("rsa", func(e *env, c map[string]any) { c["aud"] = "https://other.example/api" }), want: ErrInvalidAudience},
		{name: "aud array without ours", token: withClaims("rsa", func(e *env, c map[string]any) { c["aud"] = []string{"a", "b"} }), want: ErrInvalidAudience},
		{name: "no aud", token: withClaims("rsa", func(e *env, c map[string]any) { delete(c, "aud") }), want: ErrInvalidAudience},
		// Parser differential: a second aud spelled in another case.
		{name: "aud and AUD", token: func(e *env) string {
			c, _ := json.Marshal(e.claims())
			payload := strings.TrimSuffix(string(c), "}") + `,"AUD":"https://other.example/api"}`
			return signPayload(e.t, key("rsa"), []byte(payload), signOpts{})
		}, want: ErrMalformed},
		// Token valid forever.
		{name: "missing exp", token: withClaims("rsa", func(e *env, c map[string]any) { delete(c, "exp") }), want: ErrMalformed},
		{name: "exp a string", token: withClaims("rsa", func(e *env, c map[string]any) { c["exp"] = "9999999999" }), want: ErrMalformed},
		{name: "exp huge", token: withClaims("rsa", func(e *env, c map[string]any) { c["exp"] = 1e300 }), want: ErrMalformed},
		// Replay of an expired token.
		{name: "exp past the leeway", token: withClaims("rsa", func(e *env, c map[string]any) { c["exp"] = e.clock.Now().Add(-31 * time.Second).Unix() }), want: ErrExpired},
		// Token used before its time.
		{name: "nbf in the future", token: withClaims("rsa", func(e *env, c map[string]any) { c["nbf"] = e.clock.Now().Add(2 * time.Minute).Unix() }), want: ErrNotYetValid},
		{name: "iat in the future", token: withClaims("rsa", func(e *env, c map[string]any) { c["iat"] = e.clock.Now().Add(2 * time.Minute).Unix() }), want: ErrNotYetValid},
		// Memory and CPU exhaustion with a huge token.
		{name: "1 MB token", token: func(e *env) string { return strings.Repeat("A", 1<<20) }, want: ErrTooLarge},
		{name: "1 MB signed token", token: withClaims("rsa", func(e *env, c map[string]any) { c["pad"] = strings.Repeat("x", 1<<20) }), want: ErrTooLarge},
		// Stack exhaustion with deeply nested claims.
		{name: "deeply nested claims", token: withClaims("rsa", func(e *env, c map[string]any) { c["roles"] = nested(1000) }), want: ErrMalformed},
		{name: "deeply nested header", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claims(), signOpts{headers: map[string]any{"x": nested(100)}})
		}, want: ErrMalformed},
		// ID token replayed as an access token.
		{name: "ID token with nonce", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }), signOpts{typ: "JWT"})
		}, want: ErrNotAccessToken},
		{name: "ID token with at_hash", token: withClaims("rsa", func(e *env, c map[string]any) { c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ" }), want: ErrNotAccessToken},
		{name: "Keycloak ID token (typ claim ID)", token: withClaims("rsa", func(e *env, c map[string]any) { c["typ"] = "ID" }), want: ErrNotAccessToken},
		{name: "Keycloak refresh token", token: withClaims("rsa", func(e *env, c map[string]any) { c["typ"] = "Refresh" }), want: ErrNotAccessToken},
		{name: "ID token typed JWT when at+jwt is required", edit: func(c *IssuerConfig) { c.RequireType = "at+jwt" },
			token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{typ: "JWT"}) }, want: ErrNotAccessToken},
		{name: "ID token typed id_token when at+jwt is required", edit: func(c *IssuerConfig) { c.RequireType = "at+jwt" },
			token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{typ: "id_token"}) }, want: ErrNotAccessToken},
		{name: "untyped when at+jwt is required", edit: func(c *IssuerConfig) { c.RequireType = "at+jwt" },
			token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{}) }, want: ErrNotAccessToken},
		// Logout token replayed as an access token.
		{name: "logout token", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claimsWith(func(c map[string]any) {
				c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
			}), signOpts{typ: "logout+jwt"})
		}, want: ErrNotAccessToken},
		{name: "events claim", token: withClaims("rsa", func(e *env, c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		}), want: ErrNotAccessToken},
		// Sender-constrained (DPoP) token stolen and replayed as a bearer token.
		{name: "cnf claim", token: withClaims("rsa", func(e *env, c map[string]any) {
			c["cnf"] = map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
		}), want: ErrNotAccessToken},
		// Unknown critical extension (RFC 7515 §4.1.11).
		{name: "crit header", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claims(), signOpts{headers: map[string]any{"crit": []string{"exp"}, "exp": 1}})
		}, want: ErrMalformed},
		// Unencoded payload (RFC 7797) changing what the signature covers.
		{name: "b64 header", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claims(), signOpts{headers: map[string]any{"b64": false}})
		}, want: ErrMalformed},
		// Nested JWT whose outer signature vouches for nothing inside.
		{name: "cty JWT", token: func(e *env) string {
			return sign(e.t, key("rsa"), e.claims(), signOpts{headers: map[string]any{"cty": "JWT"}})
		}, want: ErrMalformed},
		// Encrypted token (JWE, five parts) instead of a signed one.
		{name: "JWE", token: func(e *env) string {
			enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: rsaPub, KeyID: "rsa-1"}, nil)
			if err != nil {
				e.t.Fatal(err)
			}
			c, _ := json.Marshal(e.claims())
			obj, err := enc.Encrypt(c)
			if err != nil {
				e.t.Fatal(err)
			}
			s, _ := obj.CompactSerialize()
			return s
		}, want: ErrMalformed},
		{name: "five parts", token: func(e *env) string { return "eyJhbGciOiJSUzI1NiJ9.e30.e30.e30.e30" }, want: ErrMalformed},
		// JSON serialization smuggling a second signature.
		{name: "JSON serialization", token: func(e *env) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key("rsa").priv}, nil)
			if err != nil {
				e.t.Fatal(err)
			}
			c, _ := json.Marshal(e.claims())
			obj, err := s.Sign(c)
			if err != nil {
				e.t.Fatal(err)
			}
			return obj.FullSerialize()
		}, want: ErrMalformed},
		// Whitespace around or inside the token (parser leniency).
		{name: "leading space", token: func(e *env) string { return " " + sign(e.t, key("rsa"), e.claims(), signOpts{}) }, want: ErrMalformed},
		{name: "trailing newline", token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{}) + "\n" }, want: ErrMalformed},
		{name: "padded signature", token: func(e *env) string { return sign(e.t, key("rsa"), e.claims(), signOpts{}) + "==" }, want: ErrMalformed},
		{name: "empty", token: func(e *env) string { return "" }, want: ErrMalformed},
		{name: "two dots", token: func(e *env) string { return ".." }, want: ErrMalformed},
		{name: "subject missing", token: withClaims("rsa", func(e *env, c map[string]any) { delete(c, "sub") }), want: ErrMalformed},
		{name: "subject not a string", token: withClaims("rsa", func(e *env, c map[string]any) { c["sub"] = 42 }), want: ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, p, envOpts{edit: tt.edit})
			sub, err := e.v.Verify(t.Context(), tt.token(e))
			t.Logf("Verify() = %v", err)
			wantErr(t, "Verify()", err, tt.want)
			if sub != nil {
				t.Errorf("Verify() returned subject %+v with error %v", sub, err)
			}
		})
	}
	t.Cleanup(func() {
		if n := attacker.hits.Load(); n != 0 {
			t.Errorf("the attacker's server got %d requests, want 0", n)
		}
	})
}

// A token that states a user's authentication (auth_time, acr, amr) is
// the user's; its authentication must be well formed.
func TestVerifyUserAuthentication(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("rsa"))
	e := newEnv(t, p, envOpts{})
	e.waitReady()
	at := e.clock.Now().Add(-2 * time.Minute).Truncate(time.Second)
	sub, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claimsWith(func(c map[string]any) {
		c["auth_time"], c["acr"], c["amr"] = at.Unix(), "mfa", []string{"pwd", "otp"}
	}), signOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	if sub.Kind != scope.KindUser || sub.ACR != "mfa" || strings.Join(sub.AMR, ",") != "pwd,otp" || !sub.AuthTime.Equal(at) {
		t.Errorf("subject = %+v", sub)
	}
	for name, edit := range map[string]func(map[string]any){
		"auth_time a string": func(c map[string]any) { c["auth_time"] = "yesterday" },
		"amr a string":       func(c map[string]any) { c["auth_time"], c["amr"] = at.Unix(), "otp" },
		"amr too long":       func(c map[string]any) { c["auth_time"], c["amr"] = at.Unix(), make([]string, 17) },
	} {
		if _, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claimsWith(edit), signOpts{})); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Verify = %v, want ErrMalformed", name, err)
		}
	}
}
