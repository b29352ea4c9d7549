package idp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// logoutClaims are the claims of a logout_token.
type logoutClaims struct {
	Issuer   string                     `json:"iss"`
	Subject  string                     `json:"sub"`
	Audience []string                   `json:"aud"`
	IssuedAt int64                      `json:"iat"`
	JTI      string                     `json:"jti"`
	SID      string                     `json:"sid"`
	Events   map[string]json.RawMessage `json:"events"`
	Nonce    *string                    `json:"nonce"`
}

func TestBackChannelLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID, oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess))
	tok, _, claims := h.exchange(f, h.login(b, f, "alice"))
	rawID := tok.Extra("id_token").(string)

	endSession := h.issuer + "/end_session?" + url.Values{
		"id_token_hint":            {rawID},
		"post_logout_redirect_uri": {h.rp.URL + "/logged-out"},
		"state":                    {"bye"},
	}.Encode()
	p := b.Get(endSession)
	if p.URL.Path != "/logged-out" || p.URL.Query().Get("state") != "bye" {
		t.Fatalf("logout ended at %s (status %d), want the post-logout URI with state", p.URL, p.Status)
	}

	// Only the client that took part in the session is told, once.
	tokens, paths := h.logoutTokens()
	if diff := cmp.Diff(paths, []string{"/backchannel"}); diff != "" {
		t.Fatalf("back-channel deliveries (-got +want):\n%s", diff)
	}
	raw := tokens[0]

	// Signed by a key of the JWKS, with the typ of §2.4.
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != logoutTokenType {
		t.Errorf("typ = %v, want %q", typ, logoutTokenType)
	}
	keySet := oidc.NewRemoteKeySet(h.ctx(), h.issuer+"/keys")
	payload, err := keySet.VerifySignature(h.ctx(), raw)
	if err != nil {
		t.Fatalf("logout_token signature: %v", err)
	}
	var got logoutClaims
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	want := logoutClaims{
		Issuer: h.issuer, Subject: "alice", Audience: []string{gatewayID}, IssuedAt: h.clock.Now().Unix(),
		JTI: got.JTI, SID: claims.SID,
		Events: map[string]json.RawMessage{backChannelEvent: json.RawMessage(`{}`)},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("logout_token claims (-got +want):\n%s", diff)
	}
	if got.JTI == "" || got.SID == "" {
		t.Errorf("logout_token jti %q, sid %q: want both", got.JTI, got.SID)
	}

	// The session's refresh token is revoked and the browser must sign in again.
	_, err = f.cfg.TokenSource(h.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after logout error = %v, want invalid_grant", err)
	}
	f2 := h.newFlow(h.oauth(gatewayID))
	if p := b.Get(f2.authURL); p.URL.Path != loginPath {
		t.Errorf("authorize after logout ended at %s, want the login form", p.URL)
	}
}

func TestEndSessionRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	tok, _, _ := h.exchange(f, h.login(b, f, "alice"))
	rawID := tok.Extra("id_token").(string)
	tests := []struct {
		name   string
		params url.Values
	}{
		{"unregistered post_logout_redirect_uri", url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"https://attacker.example/"}}},
		{"forged id_token_hint", url.Values{"id_token_hint": {rawID[:len(rawID)-4] + "AAAA"}, "post_logout_redirect_uri": {h.rp.URL + "/logged-out"}}},
		{"client_id not the hint's audience", url.Values{"id_token_hint": {rawID}, "client_id": {cliID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.Get(h.issuer + "/end_session?" + tt.params.Encode())
			if p.Status != http.StatusBadRequest || "https://"+p.URL.Host != h.issuer {
				t.Errorf("status %d at %s, want %d at the provider", p.Status, p.URL, http.StatusBadRequest)
			}
		})
	}
	if tokens, _ := h.logoutTokens(); len(tokens) != 0 {
		t.Errorf("%d logout tokens sent for refused logouts", len(tokens))
	}
	// The session survived the refused requests.
	f2 := h.newFlow(h.oauth(gatewayID))
	h.code(b.Get(f2.authURL), f2)
}

// Without a post_logout_redirect_uri, the browser's own session ends and the
// provider shows its own page.
func TestLogoutWithoutHint(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	h.exchange(f, h.login(b, f, "bob"))
	p := b.Get(h.issuer + "/end_session")
	if p.URL.Path != loggedOutPath || p.Status != http.StatusOK {
		t.Fatalf("logout ended at %s with %d, want %s", p.URL, p.Status, loggedOutPath)
	}
	if tokens, _ := h.logoutTokens(); len(tokens) != 1 {
		t.Errorf("%d logout tokens, want 1", len(tokens))
	}
	f2 := h.newFlow(h.oauth(gatewayID))
	if p := b.Get(f2.authURL); p.URL.Path != loginPath {
		t.Errorf("authorize after logout ended at %s, want the login form", p.URL)
	}
}

// A different user signing in on the same browser ends the previous user's
// session, and its clients hear of it.
func TestSwitchingUserEndsPreviousSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	_, _, alice := h.exchange(f, h.login(b, f, "alice"))

	f2 := h.newFlow(h.oauth(gatewayID), param("prompt", "login"))
	_, _, bob := h.exchange(f2, h.login(b, f2, "bob"))
	if bob.SID == alice.SID {
		t.Errorf("bob got alice's sid %q", alice.SID)
	}
	tokens, _ := h.logoutTokens()
	if len(tokens) != 1 {
		t.Fatalf("%d logout tokens, want 1 for alice's session", len(tokens))
	}
	payload, err := oidc.NewRemoteKeySet(h.ctx(), h.issuer+"/keys").VerifySignature(h.ctx(), tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	var got logoutClaims
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "alice" || got.SID != alice.SID {
		t.Errorf("logout_token sub %q sid %q, want alice and %q", got.Subject, got.SID, alice.SID)
	}
}
