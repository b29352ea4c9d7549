package idp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Authorization requests without PKCE S256 never reach the login page.
func TestAuthorizeRequiresPKCES256(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := h.oauth(gatewayID)
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name string
		opts []oauth2.AuthCodeOption
	}{
		{name: "no code_challenge"},
		{name: "plain", opts: []oauth2.AuthCodeOption{param("code_challenge", verifier), param("code_challenge_method", "plain")}},
		{name: "no method (defaults to plain)", opts: []oauth2.AuthCodeOption{param("code_challenge", verifier)}},
		{name: "unknown method", opts: []oauth2.AuthCodeOption{param("code_challenge", verifier), param("code_challenge_method", "S512")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			authURL := cfg.AuthCodeURL("st", append(tt.opts, oidc.Nonce("n"))...)
			p := h.browser().Get(authURL)
			q, ok := h.atCallback(p)
			if !ok {
				t.Fatalf("ended at %s (status %d), want an error at the callback", p.URL, p.Status)
			}
			if q.Get("error") != "invalid_request" || q.Get("code") != "" || q.Get("iss") != h.issuer {
				t.Errorf("callback query = %v, want error=invalid_request with iss and no code", q)
			}
		})
	}
}

// An unregistered redirect_uri is answered at the provider, never redirected to.
func TestAuthorizeWrongRedirectURI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, redirect := range []string{h.rp.URL + "/other", "https://attacker.example/callback", h.rp.URL + "/callback?x=1"} {
		cfg := h.oauth(gatewayID)
		cfg.RedirectURL = redirect
		f := h.newFlow(cfg)
		p := h.browser().Get(f.authURL)
		if p.Status != http.StatusBadRequest || "https://"+p.URL.Host != h.issuer {
			t.Errorf("redirect_uri %s: status %d at %s, want %d at the provider", redirect, p.Status, p.URL, http.StatusBadRequest)
		}
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		exchange func(h *harness, f *flow, code string) error
	}{
		{"no code_verifier", func(h *harness, f *flow, code string) error {
			_, err := f.cfg.Exchange(h.ctx(), code)
			return err
		}},
		{"wrong code_verifier", func(h *harness, f *flow, code string) error {
			_, err := f.cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}},
		{"other redirect_uri", func(h *harness, f *flow, code string) error {
			cfg := *f.cfg
			cfg.RedirectURL = h.rp.URL + "/other"
			_, err := cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(f.verifier))
			return err
		}},
		{"wrong client secret", func(h *harness, f *flow, code string) error {
			cfg := *f.cfg
			cfg.ClientSecret = "not-the-secret-0123456789"
			_, err := cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(f.verifier))
			return err
		}},
		{"other client", func(h *harness, f *flow, code string) error {
			cfg := *f.cfg
			cfg.ClientID, cfg.ClientSecret = cliID, ""
			_, err := cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(f.verifier))
			return err
		}},
		{"forged code", func(h *harness, f *flow, _ string) error {
			_, err := f.cfg.Exchange(h.ctx(), "forged", oauth2.VerifierOption(f.verifier))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			f := h.newFlow(h.oauth(gatewayID))
			code := h.login(h.browser(), f, "alice")
			err := tt.exchange(h, f, code)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("exchange error = %v, want a token endpoint error", err)
			}
		})
	}
}

// Code replay (RFC 6749 §4.1.2): the second exchange fails and revokes what
// the first one got.
func TestCodeReuseRefusedAndRevokes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := h.newFlow(h.oauth(gatewayID, oidc.ScopeOpenID, oidc.ScopeOfflineAccess))
	code := h.login(h.browser(), f, "alice")
	tok, _, _ := h.exchange(f, code)

	_, err := f.cfg.Exchange(h.ctx(), code, oauth2.VerifierOption(f.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("second exchange error = %v, want invalid_grant", err)
	}
	_, err = f.cfg.TokenSource(h.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after code replay error = %v, want invalid_grant", err)
	}
	// The userinfo endpoint no longer honours the access token either.
	_, err = h.rpProvider().UserInfo(h.ctx(), oauth2.StaticTokenSource(tok))
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") {
		t.Errorf("userinfo after code replay error = %v, want a 401 or 403", err)
	}
}

// The code is bound to the browser that signed in: the callback URL alone,
// for example leaked from a log, does not yield a code elsewhere.
func TestCallbackBoundToBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	p := b.Get(f.authURL)
	// Stop before the callback, as an attacker watching the URL would.
	b.Stop = func(*http.Request) bool { return true }
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	loc, err := url.Parse(p.Header.Get("Location"))
	if err != nil || p.Status != http.StatusSeeOther {
		t.Fatalf("login answered %d to %v, want a 303 to the callback", p.Status, loc)
	}
	other := h.browser()
	got := other.Get(p.URL.ResolveReference(loc).String())
	if got.Status != http.StatusForbidden {
		t.Errorf("callback from another browser: status %d at %s, want %d", got.Status, got.URL, http.StatusForbidden)
	}
	b.Stop = nil
	h.exchange(f, h.code(b.Get(p.URL.ResolveReference(loc).String()), f))
}
