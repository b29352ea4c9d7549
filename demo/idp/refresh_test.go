package idp

import (
	"errors"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	for _, clientID := range []string{gatewayID, cliID} {
		t.Run(clientID, func(t *testing.T) {
			h := newHarness(t)
			f := h.newFlow(h.oauth(clientID, oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess), param("acr_values", ACRMFA))
			b := h.browser()
			p := b.Submit(b.Get(f.authURL), map[string]string{"username": "carol", "password": "carol-password"})
			p = otpStep(t, b, p, h.totp("carol"))
			tok, _, first := h.exchange(f, h.code(p, f))
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token with offline_access")
			}
			h.clock.Add(time.Minute)

			refresh := func(rt string) (*oauth2.Token, error) {
				return f.cfg.TokenSource(h.ctx(), &oauth2.Token{RefreshToken: rt}).Token()
			}
			tok2, err := refresh(tok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
				t.Fatalf("refresh token not rotated: %q then %q", tok.RefreshToken, tok2.RefreshToken)
			}
			if tok2.AccessToken == tok.AccessToken {
				t.Error("same access token after refresh")
			}
			// The refreshed ID token keeps the original authentication.
			_, second := h.verify(clientID, tok2)
			if diff := cmp.Diff(second, first); diff != "" {
				t.Errorf("refreshed id token claims (-got +want):\n%s", diff)
			}

			tok3, err := refresh(tok2.RefreshToken)
			if err != nil {
				t.Fatalf("second refresh: %v", err)
			}

			// Reusing a rotated refresh token fails and revokes its family.
			var re *oauth2.RetrieveError
			if _, err := refresh(tok.RefreshToken); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("reused refresh token error = %v, want invalid_grant", err)
			}
			if _, err := refresh(tok3.RefreshToken); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("refresh after family revocation error = %v, want invalid_grant", err)
			}
		})
	}
}

func TestRefreshTokenExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.RefreshTokenTTL = time.Hour })
	f := h.newFlow(h.oauth(gatewayID, oidc.ScopeOpenID, oidc.ScopeOfflineAccess))
	tok, _, _ := h.exchange(f, h.login(h.browser(), f, "alice"))
	h.clock.Add(time.Hour)
	_, err := f.cfg.TokenSource(h.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("expired refresh token error = %v, want invalid_grant", err)
	}
}
