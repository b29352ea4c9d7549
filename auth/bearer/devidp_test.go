package bearer

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/crmgate/crmgate/demo/idp"
	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/scope"
)

const (
	devClientID     = "crm-sync"
	devClientSecret = "crm-sync-secret-0123456789abcdef"
	// devRedirect is never fetched: the browser stops at the redirect to
	// it and the test reads the code from the Location header.
	devRedirectHost = "127.0.0.1:1"
	devRedirect     = "https://" + devRedirectHost + "/callback"
)

// devIdP is the development OpenID Provider served over real TLS.
type devIdP struct {
	issuer string
	srv    *httptest.Server
	ctx    context.Context // carries a client that trusts the server
}

func newDevIdP(t *testing.T) *devIdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &devIdP{issuer: "https://" + ln.Addr().String()}
	hash, err := bcrypt.GenerateFromPassword([]byte("alice-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p, err := idp.New(idp.Config{
		Issuer:  d.issuer,
		Clients: []idp.Client{{ID: devClientID, Secret: devClientSecret, RedirectURIs: []string{devRedirect}}},
		Users: []idp.User{{Username: "alice", PasswordHash: string(hash), Email: "alice@example.com",
			Roles: []string{"sales"}, TOTPSecret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}},
	}, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.srv = httptest.NewUnstartedServer(p.Handler())
	d.srv.Listener.Close()
	d.srv.Listener = ln
	d.srv.StartTLS()
	t.Cleanup(d.srv.Close)
	d.ctx = context.WithValue(oidc.ClientContext(t.Context(), d.srv.Client()), oauth2.HTTPClient, d.srv.Client())
	return d
}

// login signs alice in with the authorization code flow (PKCE S256) and
// returns the token response.
func (d *devIdP) login(t *testing.T, ep oauth2.Endpoint) *oauth2.Token {
	t.Helper()
	conf := &oauth2.Config{ClientID: devClientID, ClientSecret: devClientSecret, Endpoint: ep,
		RedirectURL: devRedirect, Scopes: []string{oidc.ScopeOpenID, "profile"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier), oidc.Nonce("nonce-0123456789"))
	roots := x509.NewCertPool()
	roots.AddCert(d.srv.Certificate())
	b := browsertest.New(t, roots)
	b.Stop = func(next *http.Request) bool { return next.URL.Host == devRedirectHost }
	p := b.Get(authURL)
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	loc := p.Location()
	if loc == nil || loc.Host != devRedirectHost || loc.Query().Get("code") == "" {
		t.Fatalf("login ended at %d %s (Location %v), not a redirect with a code:\n%s", p.Status, p.URL, loc, p.Body)
	}
	tok, err := conf.Exchange(d.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// The development IdP end to end: what it issues, verified as the gateway
// would.
func TestDevIdP(t *testing.T) {
	t.Parallel()
	d := newDevIdP(t)
	op, err := oidc.NewProvider(d.ctx, d.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		t.Fatal(err)
	}

	// The dev IdP has no API audience: its access tokens' aud is the
	// client id, so the test uses that as the audience.
	newVerifier := func(t *testing.T, edit func(*IssuerConfig)) *Verifier {
		ic := IssuerConfig{Issuer: d.issuer, Audience: devClientID}
		if edit != nil {
			edit(&ic)
		}
		v, err := New(Config{Issuers: []IssuerConfig{ic}}, d.srv.Client(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		(&env{t: t, v: v}).waitReady()
		return v
	}

	t.Run("client credentials", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: devClientID, ClientSecret: devClientSecret, TokenURL: op.Endpoint().TokenURL}
		tok, err := cc.Token(d.ctx)
		if err != nil {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("client credentials grant: %v", err)
			}
			t.Logf("the dev IdP issues no client-credentials tokens (grant_types_supported %q): %s %s",
				meta.GrantTypes, re.ErrorCode, re.ErrorDescription)
			if slices.Contains(meta.GrantTypes, "client_credentials") {
				t.Errorf("client_credentials is advertised but refused: %v", err)
			}
			return // the ID and access token cases below cover the dev IdP
		}
		sub, err := newVerifier(t, func(c *IssuerConfig) { c.SubjectClaim = "client_id" }).Verify(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatalf("Verify(client-credentials access token) = %v", err)
		}
		if sub.Kind != scope.KindService || sub.ID != devClientID {
			t.Errorf("Verify() = %+v, want a service subject %s", sub, devClientID)
		}
	})

	t.Run("authorization code", func(t *testing.T) {
		tok := d.login(t, op.Endpoint())
		idToken, _ := tok.Extra("id_token").(string)
		if idToken == "" {
			t.Fatal("token response without an ID token")
		}
		v := newVerifier(t, nil)

		// ID token replayed as an access token.
		_, err := v.Verify(t.Context(), idToken)
		wantErr(t, "Verify(ID token)", err, ErrNotAccessToken)

		// The access token of the same login is a JWT (RFC 9068) the
		// gateway verifies without calling back. The dev IdP puts no
		// scope claim in it.
		sub, err := v.Verify(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatalf("Verify(access token) = %v", err)
		}
		// It states alice's authentication (auth_time, acr, amr): the
		// subject is alice, a user, whose authentication a step-up
		// checks.
		if sub.AuthTime.IsZero() || time.Since(sub.AuthTime) > time.Minute {
			t.Errorf("Verify(access token).AuthTime = %s, want the login's", sub.AuthTime)
		}
		want := &scope.Subject{Kind: scope.KindUser, ID: "alice", Roles: []string{"sales"}, ACR: "pwd", AMR: []string{"pwd"}, AuthTime: sub.AuthTime,
			Claims: map[string]any{"iss": d.issuer, "scopes": []string{}, "client_id": devClientID}}
		if d := cmp.Diff(sub, want); d != "" {
			t.Errorf("Verify(access token) (-got +want):\n%s", d)
		}

		// The dev IdP types its access tokens JWT, not at+jwt: a
		// verifier that requires at+jwt refuses them.
		_, err = newVerifier(t, func(c *IssuerConfig) { c.RequireType = "at+jwt" }).Verify(t.Context(), tok.AccessToken)
		wantErr(t, "Verify(access token typed JWT, at+jwt required)", err, ErrNotAccessToken)
	})
}
