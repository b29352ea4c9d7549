package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Every ID token check in the callback, each reached on its own: the stub
// provider signs the tokens with a key in its JWKS unless the case is
// about the signature. The first case is the control that passes.
func TestCallbackRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true})
	s := e.stub
	rogueRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rogueEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	// withClaims mints a token response whose ID token has edit applied.
	withClaims := func(edit func(c map[string]any)) func(url.Values) map[string]any {
		return func(auth url.Values) map[string]any {
			c := s.idClaims(auth)
			edit(c)
			return tokenResponse(s.sign(c, nil))
		}
	}
	// signedBy mints an ID token with good claims signed otherwise.
	signedBy := func(sign func(c map[string]any) string) func(url.Values) map[string]any {
		return func(auth url.Values) map[string]any { return tokenResponse(sign(s.idClaims(auth))) }
	}
	typed := func(typ string) *jose.SignerOptions { return (&jose.SignerOptions{}).WithType(jose.ContentType(typ)) }
	now := func() int64 { return e.clock.Now().Unix() }

	tests := []struct {
		name   string
		mint   func(url.Values) map[string]any
		reason string // "" for success
		why    string // in the logged error: which check refused
	}{
		{"valid", s.defaultMint, "", ""},
		{"expired within the clock skew", withClaims(func(c map[string]any) { c["exp"] = now() - 10 }), "", ""},
		{"several audiences with azp", withClaims(func(c map[string]any) { c["aud"] = []string{testClientID, "other"}; c["azp"] = testClientID }), "", ""},

		{"wrong issuer", withClaims(func(c map[string]any) { c["iss"] = "https://evil.example" }), ReasonIDToken, "issued by a different provider"},
		{"wrong audience", withClaims(func(c map[string]any) { c["aud"] = "other-client" }), ReasonIDToken, "expected audience"},
		{"several audiences without azp", withClaims(func(c map[string]any) { c["aud"] = []string{testClientID, "other"} }), ReasonIDToken, "several audiences and no azp"},
		{"azp of another client", withClaims(func(c map[string]any) { c["azp"] = "other-client" }), ReasonIDToken, "azp is another client"},
		{"expired", withClaims(func(c map[string]any) { c["exp"] = now() - 120 }), ReasonIDToken, "expired at"},
		{"no exp", withClaims(func(c map[string]any) { delete(c, "exp") }), ReasonIDToken, "exp missing"},
		{"issued in the future", withClaims(func(c map[string]any) { c["iat"] = now() + 600 }), ReasonIDToken, "iat in the future"},
		{"not yet valid", withClaims(func(c map[string]any) { c["nbf"] = now() + 600 }), ReasonIDToken, "nbf in the future"},
		{"no sub", withClaims(func(c map[string]any) { delete(c, "sub") }), ReasonIDToken, "sub missing"},
		{"nonce of another login", withClaims(func(c map[string]any) { c["nonce"] = rand.Text() }), ReasonNonce, "nonce mismatch"},
		{"no nonce", withClaims(func(c map[string]any) { delete(c, "nonce") }), ReasonNonce, "nonce mismatch"},
		{"access token claims (scope)", withClaims(func(c map[string]any) { c["scope"] = "openid" }), ReasonIDToken, "an access token (scope claim)"},
		{"logout token claims (events)", withClaims(func(c map[string]any) {
			c["events"] = map[string]any{backChannelEvent: map[string]any{}}
		}), ReasonIDToken, "a logout token (events claim)"},

		{"alg none", signedBy(func(c map[string]any) string { return unsignedJWT(t, c) }), ReasonIDToken, "unexpected signature algorithm"},
		{"key not in JWKS, same kid", signedBy(func(c map[string]any) string {
			return signJWT(t, jose.RS256, &jose.JSONWebKey{Key: rogueRSA, KeyID: s.kid}, c, nil)
		}), ReasonIDToken, "failed to verify signature"},
		{"key not in JWKS, embedded jwk", signedBy(func(c map[string]any) string {
			return signJWT(t, jose.RS256, rogueRSA, c, &jose.SignerOptions{EmbedJWK: true})
		}), ReasonIDToken, "failed to verify signature"},
		{"ES256 key not in JWKS", signedBy(func(c map[string]any) string {
			return signJWT(t, jose.ES256, &jose.JSONWebKey{Key: rogueEC, KeyID: "ec"}, c, nil)
		}), ReasonIDToken, "failed to verify signature"},
		{"HS256 with the public key as secret", signedBy(func(c map[string]any) string {
			return signJWT(t, jose.HS256, pubDER, c, nil)
		}), ReasonIDToken, "unexpected signature algorithm"},
		{"RS512 not configured", signedBy(func(c map[string]any) string {
			return signJWT(t, jose.RS512, &jose.JSONWebKey{Key: s.key, KeyID: s.kid}, c, nil)
		}), ReasonIDToken, "unexpected signature algorithm"},
		{"typ at+jwt", signedBy(func(c map[string]any) string { return s.sign(c, typed("at+jwt")) }), ReasonIDToken, "typ \"at+jwt\""},
		{"typ logout+jwt", signedBy(func(c map[string]any) string { return s.sign(c, typed("logout+jwt")) }), ReasonIDToken, "typ \"logout+jwt\""},

		{"no id_token", func(url.Values) map[string]any {
			r := tokenResponse("")
			delete(r, "id_token")
			return r
		}, ReasonNoIDToken, ""},
		{"ID token sent as access token", func(auth url.Values) map[string]any {
			id := s.sign(s.idClaims(auth), nil)
			r := tokenResponse(id)
			r["access_token"] = id
			return r
		}, ReasonAccessToken, "the ID token was sent as access token"},
		{"at_hash mismatch", func(auth url.Values) map[string]any {
			c := s.idClaims(auth)
			c["at_hash"] = atHash("another access token")
			return tokenResponse(s.sign(c, nil))
		}, ReasonAccessToken, "at_hash"},
		{"at_hash match", func(auth url.Values) map[string]any {
			r := tokenResponse("")
			c := s.idClaims(auth)
			c["at_hash"] = atHash(r["access_token"].(string))
			r["id_token"] = s.sign(c, nil)
			return r
		}, "", ""},
		{"an ID token of another login as access token", func(auth url.Values) map[string]any {
			r := tokenResponse(s.sign(s.idClaims(auth), nil))
			other := s.idClaims(auth)
			other["nonce"] = rand.Text()
			r["access_token"] = s.sign(other, nil)
			return r
		}, ReasonAccessToken, "an ID or logout token, not an access token"},
		{"no access token", func(auth url.Values) map[string]any {
			r := tokenResponse(s.sign(s.idClaims(auth), nil))
			delete(r, "access_token")
			return r
		}, ReasonCodeExchange, "missing access_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.set(func(s *stubOP) { s.mint = tt.mint })
			b := e.browser(t)
			p := b.Get(e.rpURL + "/whoami")
			if tt.reason == "" {
				if w := who(t, p); w.Subject != "alice" || w.Path != "/whoami" || w.ACR != "mfa" || w.SID != "stub-sid-1" {
					t.Errorf("identified as %+v", w)
				}
				return
			}
			e.wantFailure(t, p, http.StatusBadRequest, tt.reason)
			if line := e.logs.lastWith("auth: login failed"); !strings.Contains(line, tt.why) {
				t.Errorf("logged %q, want it to say %q", line, tt.why)
			}
			if e.identified(b) {
				t.Error("a session was started")
			}
		})
	}
}

// The provider's discovery does not advertise RFC 9207 here, so a response
// without iss is accepted, and one with the wrong iss still refused.
func TestIssuerParameterOptional(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true, stubNoIss: true})
	e.stub.set(func(s *stubOP) { s.iss = "-" })
	who(t, e.browser(t).Get(e.rpURL+"/"))
	e.stub.set(func(s *stubOP) { s.iss = "https://evil.example" })
	e.wantFailure(t, e.browser(t).Get(e.rpURL+"/"), http.StatusBadRequest, ReasonIssuerMismatch)
}

// A requested max_age makes an older auth_time fail (OIDC Core §3.1.3.7
// item 13), and a missing one too.
func TestMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true})
	for _, tt := range []struct {
		name     string
		authTime any
		ok       bool
	}{
		{"fresh", e.clock.Now().Unix(), true},
		{"older than max_age", e.clock.Now().Add(-10 * time.Minute).Unix(), false},
		{"missing", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.stub.set(func(s *stubOP) {
				s.mint = func(auth url.Values) map[string]any {
					if auth.Get("max_age") != "60" || auth.Get("prompt") != "login" {
						t.Errorf("max_age %q prompt %q, want 60 and login", auth.Get("max_age"), auth.Get("prompt"))
					}
					c := s.idClaims(auth)
					if tt.authTime == nil {
						delete(c, "auth_time")
					} else {
						c["auth_time"] = tt.authTime
					}
					return tokenResponse(s.sign(c, nil))
				}
			})
			p := e.browser(t).Get(e.rpURL + "/fresh")
			if tt.ok {
				who(t, p)
				return
			}
			e.wantFailure(t, p, http.StatusBadRequest, ReasonIDToken)
		})
	}
}

// With userinfo on, its claims complete the ID token's, and a userinfo
// answer about another user fails the login (OIDC Core §5.3.4).
func TestUserInfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{stub: true, cfg: func(c *Config) {
		c.UserInfo = true
		c.Roles = RolesConfig{Claim: "realm_access.roles", Map: map[string]string{"crm-sales": "sales", "crm-admin": "admin"}}
	}})
	e.stub.set(func(s *stubOP) {
		s.userinfo = map[string]any{"sub": "alice", "email": "alice@corp.example", "email_verified": true,
			"realm_access": map[string]any{"roles": []string{"crm-sales", "offline", "crm-admin"}}}
	})
	w := who(t, e.browser(t).Get(e.rpURL+"/"))
	if w.Email != "alice@corp.example" || len(w.Roles) != 2 || w.Roles[0] != "sales" || w.Roles[1] != "admin" {
		t.Errorf("email %q roles %q, want userinfo's email and the mapped roles [sales admin]", w.Email, w.Roles)
	}
	e.stub.set(func(s *stubOP) { s.userinfo = map[string]any{"sub": "mallory", "email": "mallory@example.com"} })
	e.wantFailure(t, e.browser(t).Get(e.rpURL+"/"), http.StatusBadGateway, ReasonUserInfo)
}
