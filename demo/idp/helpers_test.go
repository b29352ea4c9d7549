package idp

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/clocktest"
)

// fakeClock is the provider's clock in tests; it starts at the real time so
// that the library's own time.Now-based expiries agree with it.
type fakeClock = clocktest.Clock

func newFakeClock() *fakeClock { return clocktest.New(time.Now().Truncate(time.Second)) }

type testUser struct {
	name, password, secret string
	roles                  []string
	alwaysMFA              bool
}

var testUsers = []testUser{
	{name: "alice", password: "alice-password", roles: []string{"sales"}},
	{name: "bob", password: "bob-password", roles: []string{"finance"}},
	{name: "carol", password: "carol-password", roles: []string{"admin"}},
	{name: "dave", password: "dave-password", roles: []string{"support"}, alwaysMFA: true},
}

const (
	gatewayID     = "gateway"
	gatewaySecret = "gateway-secret-0123456789abcdef"
	cliID         = "cli"
	bystanderID   = "bystander"
)

// harness is a provider served over real TLS on 127.0.0.1 and a relying
// party on plain HTTP that records what reaches its callback and
// back-channel logout endpoints.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	idp    *Provider
	srv    *httptest.Server
	issuer string
	rp     *httptest.Server
	users  map[string]testUser

	mu          sync.Mutex
	logouts     []string     // logout_token values, per back-channel endpoint path
	logoutPaths []string     // the path each one arrived at
	callbacks   []url.Values // queries that reached /callback
}

func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), users: make(map[string]testUser)}

	rpMux := http.NewServeMux()
	rpMux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.callbacks = append(h.callbacks, r.URL.Query())
		h.mu.Unlock()
		io.WriteString(w, "callback")
	})
	rpMux.HandleFunc("/logged-out", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "rp logged out") })
	backchannel := func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.logouts = append(h.logouts, r.PostForm.Get("logout_token"))
		h.logoutPaths = append(h.logoutPaths, r.URL.Path)
		h.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
	rpMux.HandleFunc("/backchannel", backchannel)
	rpMux.HandleFunc("/bystander/backchannel", backchannel)
	h.rp = httptest.NewServer(rpMux)
	t.Cleanup(h.rp.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.issuer = "https://" + ln.Addr().String()

	cfg := Config{
		Issuer: h.issuer,
		Clients: []Client{
			{
				ID: gatewayID, Secret: gatewaySecret,
				RedirectURIs:           []string{h.rp.URL + "/callback"},
				PostLogoutRedirectURIs: []string{h.rp.URL + "/logged-out"},
				BackChannelLogoutURI:   h.rp.URL + "/backchannel",
			},
			{ID: cliID, RedirectURIs: []string{h.rp.URL + "/callback"}},
			{ID: bystanderID, Secret: "bystander-secret-0123456789", RedirectURIs: []string{h.rp.URL + "/bystander"},
				BackChannelLogoutURI: h.rp.URL + "/bystander/backchannel"},
		},
	}
	for _, u := range testUsers {
		hash, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		key, err := totp.Generate(totp.GenerateOpts{Issuer: "test", AccountName: u.name})
		if err != nil {
			t.Fatal(err)
		}
		u.secret = key.Secret()
		h.users[u.name] = u
		cfg.Users = append(cfg.Users, User{Username: u.name, PasswordHash: string(hash), Email: u.name + "@example.com",
			Roles: u.roles, TOTPSecret: u.secret, AlwaysMFA: u.alwaysMFA})
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h.idp, err = New(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})), h.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewUnstartedServer(h.idp.Handler())
	h.srv.Listener.Close()
	h.srv.Listener = ln
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

// ctx carries the TLS client that trusts the provider's certificate, for
// go-oidc and x/oauth2.
func (h *harness) ctx() context.Context {
	ctx := oidc.ClientContext(h.t.Context(), h.srv.Client())
	return context.WithValue(ctx, oauth2.HTTPClient, h.srv.Client())
}

// rpProvider is a fresh go-oidc provider, so that no JWKS is cached.
func (h *harness) rpProvider() *oidc.Provider {
	h.t.Helper()
	p, err := oidc.NewProvider(h.ctx(), h.issuer)
	if err != nil {
		h.t.Fatalf("oidc.NewProvider: %v", err)
	}
	return p
}

func (h *harness) oauth(clientID string, scopes ...string) *oauth2.Config {
	secret := ""
	switch clientID {
	case gatewayID:
		secret = gatewaySecret
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &oauth2.Config{
		ClientID: clientID, ClientSecret: secret,
		Endpoint:    h.rpProvider().Endpoint(),
		RedirectURL: h.rp.URL + "/callback",
		Scopes:      scopes,
	}
}

func (h *harness) verifier(clientID string) *oidc.IDTokenVerifier {
	return h.rpProvider().Verifier(&oidc.Config{ClientID: clientID, Now: h.clock.Now})
}

func (h *harness) totp(user string) string {
	h.t.Helper()
	return browsertest.TOTPAt(h.t, h.users[user].secret, h.clock.Now())
}

// wrongTOTP returns a code that no step within the accepted drift produces.
func (h *harness) wrongTOTP(user string) string {
	h.t.Helper()
	valid := make(map[string]bool)
	for _, d := range []time.Duration{-totpPeriod * time.Second, 0, totpPeriod * time.Second} {
		code, err := totp.GenerateCodeCustom(h.users[user].secret, h.clock.Now().Add(d), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil {
			h.t.Fatal(err)
		}
		valid[code] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !valid[c] {
			return c
		}
	}
	h.t.Fatal("no wrong code found")
	return ""
}

func (h *harness) logoutTokens() (tokens, paths []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.logouts...), append([]string(nil), h.logoutPaths...)
}

// browser is a browser that trusts the provider's certificate.
func (h *harness) browser() *browsertest.Browser {
	h.t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(h.srv.Certificate())
	return browsertest.New(h.t, roots)
}

// flow is one authorization request of the relying party.
type flow struct {
	cfg                    *oauth2.Config
	state, nonce, verifier string
	authURL                string
}

func randomString(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newFlow builds an authorization URL with PKCE S256, state and nonce.
func (h *harness) newFlow(cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) *flow {
	f := &flow{cfg: cfg, state: randomString(h.t), nonce: randomString(h.t), verifier: oauth2.GenerateVerifier()}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, opts...)
	f.authURL = cfg.AuthCodeURL(f.state, opts...)
	return f
}

func param(k, v string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam(k, v) }

// atCallback reports whether p is the relying party's callback, and its query.
func (h *harness) atCallback(p browsertest.Page) (url.Values, bool) {
	if p.URL.Host != strings.TrimPrefix(h.rp.URL, "http://") || p.URL.Path != "/callback" {
		return nil, false
	}
	return p.URL.Query(), true
}

// code checks that p is a successful authorization response for f.
func (h *harness) code(p browsertest.Page, f *flow) string {
	h.t.Helper()
	q, ok := h.atCallback(p)
	if !ok {
		h.t.Fatalf("ended at %s (status %d), not the callback:\n%s", p.URL, p.Status, p.Body)
	}
	if q.Get("error") != "" {
		h.t.Fatalf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	if got := q.Get("state"); got != f.state {
		h.t.Errorf("state = %q, want %q", got, f.state)
	}
	if got := q.Get("iss"); got != h.issuer {
		h.t.Errorf("iss = %q, want %q (RFC 9207)", got, h.issuer)
	}
	return q.Get("code")
}

// login runs a password login from the authorization URL to the callback.
func (h *harness) login(b *browsertest.Browser, f *flow, user string) string {
	h.t.Helper()
	p := b.Get(f.authURL)
	p = b.Submit(p, map[string]string{"username": user, "password": h.users[user].password})
	return h.code(p, f)
}

// exchange redeems code and verifies the ID token as go-oidc does.
func (h *harness) exchange(f *flow, code string) (*oauth2.Token, *oidc.IDToken, tokenClaims) {
	h.t.Helper()
	tok, err := f.cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		h.t.Fatalf("Exchange: %v", err)
	}
	idt, claims := h.verify(f.cfg.ClientID, tok)
	if idt.Nonce != f.nonce {
		h.t.Errorf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	return tok, idt, claims
}

func (h *harness) verify(clientID string, tok *oauth2.Token) (*oidc.IDToken, tokenClaims) {
	h.t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		h.t.Fatal("token response without id_token")
	}
	idt, err := h.verifier(clientID).Verify(h.ctx(), raw)
	if err != nil {
		h.t.Fatalf("Verify(id_token): %v", err)
	}
	var c tokenClaims
	if err := idt.Claims(&c); err != nil {
		h.t.Fatal(err)
	}
	return idt, c
}

// tokenClaims are the claims the tests look at.
type tokenClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Username      string   `json:"preferred_username"`
	Roles         []string `json:"roles"`
	ACR           string   `json:"acr"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"`
	SID           string   `json:"sid"`
}

// kid returns the key id in a JWS header.
func kid(t *testing.T, raw string) string {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}
