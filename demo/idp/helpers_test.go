package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
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
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// fakeClock is the provider's clock in tests; it starts at the real time so
// that the library's own time.Now-based expiries agree with it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

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
	code, err := totp.GenerateCodeCustom(h.users[user].secret, h.clock.Now(), totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
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

// browser is an HTTP client with a cookie jar that follows redirects.
type browser struct {
	h *harness
	c *http.Client
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, c: &http.Client{Transport: h.srv.Client().Transport, Jar: jar}}
}

// page is a response, read.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

func (b *browser) get(raw string) page {
	b.h.t.Helper()
	resp, err := b.c.Get(raw)
	if err != nil {
		b.h.t.Fatalf("GET %s: %v", raw, err)
	}
	return read(b.h.t, resp)
}

func read(t *testing.T, resp *http.Response) page {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

// submit fills the page's form with fields and posts it.
func (b *browser) submit(p page, fields map[string]string) page {
	b.h.t.Helper()
	action, values := parseForm(b.h.t, p)
	for k, v := range fields {
		values.Set(k, v)
	}
	resp, err := b.c.PostForm(action, values)
	if err != nil {
		b.h.t.Fatalf("POST %s: %v", action, err)
	}
	return read(b.h.t, resp)
}

// parseForm returns the absolute action of the page's form and its inputs.
func parseForm(t *testing.T, p page) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	var action string
	values := url.Values{}
	found := false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "form":
			found = true
			action = attr(n, "action")
		case "input":
			values.Set(attr(n, "name"), attr(n, "value"))
		}
	}
	if !found {
		t.Fatalf("no form on %s (status %d):\n%s", p.url, p.status, p.body)
	}
	ref, err := url.Parse(action)
	if err != nil {
		t.Fatal(err)
	}
	return p.url.ResolveReference(ref).String(), values
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
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
func (h *harness) atCallback(p page) (url.Values, bool) {
	if p.url.Host != strings.TrimPrefix(h.rp.URL, "http://") || p.url.Path != "/callback" {
		return nil, false
	}
	return p.url.Query(), true
}

// code checks that p is a successful authorization response for f.
func (h *harness) code(p page, f *flow) string {
	h.t.Helper()
	q, ok := h.atCallback(p)
	if !ok {
		h.t.Fatalf("ended at %s (status %d), not the callback:\n%s", p.url, p.status, p.body)
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
func (h *harness) login(b *browser, f *flow, user string) string {
	h.t.Helper()
	p := b.get(f.authURL)
	p = b.submit(p, map[string]string{"username": user, "password": h.users[user].password})
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
