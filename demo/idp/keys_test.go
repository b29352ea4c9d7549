package idp

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func (h *harness) jwksKids() []string {
	h.t.Helper()
	resp, err := h.srv.Client().Get(h.issuer + "/keys")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		h.t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.IsPublic() && k.Use == "sig" && k.Algorithm == string(jose.RS256) {
			kids = append(kids, k.KeyID)
		}
	}
	slices.Sort(kids)
	return kids
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f1 := h.newFlow(h.oauth(gatewayID))
	tok1, _, _ := h.exchange(f1, h.login(b, f1, "alice"))
	raw1 := tok1.Extra("id_token").(string)
	kid1 := kid(t, raw1)

	if err := h.idp.Rotate(); err != nil {
		t.Fatal(err)
	}
	f2 := h.newFlow(h.oauth(gatewayID))
	tok2, _, _ := h.exchange(f2, h.code(b.Get(f2.authURL), f2))
	raw2 := tok2.Extra("id_token").(string)
	kid2 := kid(t, raw2)
	if kid1 == kid2 {
		t.Fatalf("kid %q unchanged by Rotate", kid1)
	}
	if kid(t, tok2.AccessToken) != kid2 {
		t.Errorf("access token not signed with the new key")
	}
	want := []string{kid1, kid2}
	slices.Sort(want)
	if diff := cmp.Diff(h.jwksKids(), want); diff != "" {
		t.Errorf("JWKS kids after rotation (-got +want):\n%s", diff)
	}
	// A relying party that fetches the JWKS now verifies both tokens.
	for _, raw := range []string{raw1, raw2} {
		if _, err := h.verifier(gatewayID).Verify(h.ctx(), raw); err != nil {
			t.Errorf("Verify after rotation: %v", err)
		}
	}

	// Once every token the old key signed has expired, it leaves the JWKS.
	h.clock.Add(DefaultIDTokenTTL + keyRetentionSlack + time.Second)
	if diff := cmp.Diff(h.jwksKids(), []string{kid2}); diff != "" {
		t.Errorf("JWKS kids after retention (-got +want):\n%s", diff)
	}
	lax := h.rpProvider().Verifier(&oidc.Config{ClientID: gatewayID, SkipExpiryCheck: true})
	if _, err := lax.Verify(h.ctx(), raw1); err == nil {
		t.Error("token signed by a dropped key still verifies")
	}
	if _, err := lax.Verify(h.ctx(), raw2); err != nil {
		t.Errorf("token signed by the current key: %v", err)
	}
}

func TestAutomaticKeyRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.KeyRotation = time.Hour; c.IDTokenTTL = 2 * time.Hour })
	b := h.browser()
	f1 := h.newFlow(h.oauth(gatewayID))
	tok1, _, _ := h.exchange(f1, h.login(b, f1, "alice"))
	h.clock.Add(time.Hour)
	f2 := h.newFlow(h.oauth(gatewayID))
	tok2, _, _ := h.exchange(f2, h.code(b.Get(f2.authURL), f2))
	k1, k2 := kid(t, tok1.Extra("id_token").(string)), kid(t, tok2.Extra("id_token").(string))
	if k1 == k2 {
		t.Errorf("kid %q unchanged after KeyRotation elapsed", k1)
	}
	if got := len(h.jwksKids()); got != 2 {
		t.Errorf("JWKS has %d keys, want 2", got)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp, err := h.srv.Client().Get(h.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery status %d", resp.StatusCode)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                                         h.issuer,
		"authorization_endpoint":                         h.issuer + "/authorize",
		"token_endpoint":                                 h.issuer + "/oauth/token",
		"userinfo_endpoint":                              h.issuer + "/userinfo",
		"jwks_uri":                                       h.issuer + "/keys",
		"end_session_endpoint":                           h.issuer + "/end_session",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":               []any{"S256"},
		"id_token_signing_alg_values_supported":          []any{"RS256"},
		"acr_values_supported":                           []any{ACRPassword, ACRMFA},
		"scopes_supported":                               []any{"openid", "profile", "email", "offline_access"},
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"authorization_response_iss_parameter_supported": true,
	}
	got := make(map[string]any)
	for k := range want {
		got[k] = doc[k]
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("discovery (-got +want):\n%s", diff)
	}
	if _, ok := doc["device_authorization_endpoint"]; ok {
		t.Error("discovery advertises the device flow, which is not supported")
	}
}
