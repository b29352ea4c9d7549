package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// stubOP is a scripted OpenID Provider for the tests that need tokens the
// dev IdP would never issue: it signs whatever claims a test asks for with
// a key it publishes in its JWKS, so that each ID token or logout token
// check is reached on its own (a token that a key outside the JWKS signed
// would fail on its signature first). Its token endpoint checks PKCE S256.
type stubOP struct {
	t        *testing.T
	issuer   string
	redirect string
	key      *rsa.PrivateKey
	kid      string
	now      func() time.Time // the RP's clock, so tokens age with it

	// Discovery settings; set before the RP starts.
	advertiseIss bool

	mu       sync.Mutex
	codes    map[string]url.Values // code -> the authorization request
	lastAuth url.Values
	// respond shapes the authorization response's iss: "" sends the
	// issuer, "-" sends none, anything else is sent as is.
	iss string
	// mint answers the token request for an authorization request.
	mint func(auth url.Values) map[string]any
	// refresh answers a refresh_token grant: status and body.
	refresh  func(rt string) (int, map[string]any)
	userinfo map[string]any
}

func newStubOP(t *testing.T, issuer, redirect string, now func() time.Time) *stubOP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s := &stubOP{t: t, issuer: issuer, redirect: redirect, key: key, kid: "stub-key-1", now: now, advertiseIss: true, codes: map[string]url.Values{}}
	s.mint = s.defaultMint
	return s
}

func (s *stubOP) set(f func(s *stubOP)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *stubOP) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                         s.issuer,
			"authorization_endpoint":                         s.issuer + "/authorize",
			"token_endpoint":                                 s.issuer + "/token",
			"jwks_uri":                                       s.issuer + "/keys",
			"userinfo_endpoint":                              s.issuer + "/userinfo",
			"end_session_endpoint":                           s.issuer + "/end_session",
			"response_types_supported":                       []string{"code"},
			"subject_types_supported":                        []string{"public"},
			"id_token_signing_alg_values_supported":          []string{"RS256"},
			"code_challenge_methods_supported":               []string{"S256"},
			"token_endpoint_auth_methods_supported":          []string{"client_secret_basic"},
			"authorization_response_iss_parameter_supported": s.advertiseIss,
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code := rand.Text()
		s.mu.Lock()
		s.codes[code] = q
		s.lastAuth = q
		iss := s.iss
		s.mu.Unlock()
		resp := url.Values{"code": {code}, "state": {q.Get("state")}}
		switch iss {
		case "":
			resp.Set("iss", s.issuer)
		case "-":
		default:
			resp.Set("iss", iss)
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+resp.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if id, sec, ok := r.BasicAuth(); !ok || id != testClientID || sec != testClientSecret {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			s.mu.Lock()
			auth, ok := s.codes[r.PostForm.Get("code")]
			delete(s.codes, r.PostForm.Get("code"))
			mint := s.mint
			s.mu.Unlock()
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			switch {
			case !ok, r.PostForm.Get("redirect_uri") != s.redirect,
				auth.Get("code_challenge_method") != "S256",
				base64.RawURLEncoding.EncodeToString(sum[:]) != auth.Get("code_challenge"):
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
				return
			}
			writeJSON(w, http.StatusOK, mint(auth))
		case "refresh_token":
			s.mu.Lock()
			refresh := s.refresh
			s.mu.Unlock()
			if refresh == nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
				return
			}
			status, body := refresh(r.PostForm.Get("refresh_token"))
			writeJSON(w, status, body)
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		}
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		info := s.userinfo
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, info)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// idClaims are the claims of a good ID token for auth.
func (s *stubOP) idClaims(auth url.Values) map[string]any {
	now := s.now()
	return map[string]any{
		"iss": s.issuer, "sub": "alice", "aud": testClientID,
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "auth_time": now.Unix(),
		"nonce": auth.Get("nonce"), "acr": "mfa", "amr": []string{"pwd", "otp"}, "sid": "stub-sid-1",
		"email": "alice@example.com", "email_verified": true, "roles": []string{"sales"},
	}
}

// response is a token response carrying idToken.
func tokenResponse(idToken string) map[string]any {
	return map[string]any{
		"access_token": "opaque-" + rand.Text(), "token_type": "Bearer", "expires_in": 300,
		"refresh_token": "rt-" + rand.Text(), "id_token": idToken,
	}
}

func (s *stubOP) defaultMint(auth url.Values) map[string]any {
	return tokenResponse(s.sign(s.idClaims(auth), nil))
}

// sign signs claims with the published key (RS256, its kid); opts may add
// headers.
func (s *stubOP) sign(claims map[string]any, opts *jose.SignerOptions) string {
	return signJWT(s.t, jose.RS256, &jose.JSONWebKey{Key: s.key, KeyID: s.kid}, claims, opts)
}

func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any, opts *jose.SignerOptions) string {
	t.Helper()
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsignedJWT is claims with "alg": "none" and an empty signature.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// atHash is the at_hash of an RS256 ID token for accessToken.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
