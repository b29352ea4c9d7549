package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/internal/browsertest"
)

// An API client acting for carol with a bearer access token from the
// demo IdP: a delete with a password-only token gets RFC 9470's
// insufficient_user_authentication challenge; with a token obtained
// after a TOTP step (acr_values=mfa) it goes through.
func TestBearerStepUp(t *testing.T) {
	d := startDemo(t)
	r := startReplica(t, d, func(c string) string {
		return c + fmt.Sprintf("\npolicy:\n  dir: %q\n  eval_timeout: 2s\nbearer:\n  issuers:\n    - issuer: %q\n      audience: crmgate-demo\n      ca_file: %q\n      roles_claim: roles\n",
			mustAbs(t, "../policies"), d.IdPURL, d.CACert)
	})
	del := func(token string, id int) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodDelete, fmt.Sprintf("%s/api/contacts/%d", r.URL, id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := d.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := del(d.accessToken(t, "carol", false), 9)
	want := `Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="mfa", max_age=300`
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("password-only token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res := del(d.accessToken(t, "carol", true), 9); res.StatusCode != http.StatusNoContent {
		t.Fatalf("token after a TOTP step: %d", res.StatusCode)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accessToken runs the authorization code flow of the demo's client at
// the demo IdP as user (with the TOTP step when mfa) and returns the
// access token, as an API client acting for the user would hold it.
func (d *demo) accessToken(t *testing.T, user string, mfa bool) string {
	t.Helper()
	secret, err := os.ReadFile(filepath.Join(d.dir, "secrets", "oidc-client.secret"))
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "crmgate-demo", ClientSecret: strings.TrimSpace(string(secret)),
		Endpoint:    oauth2.Endpoint{AuthURL: d.IdPURL + "/authorize", TokenURL: d.IdPURL + "/oauth/token"},
		RedirectURL: d.GatewayURL + "/.crmgate/callback", Scopes: []string{"openid", "profile"}}
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n-0123456789abcdef")}
	if mfa {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", "mfa"))
	}
	b := d.browser(t)
	b.Stop = func(next *http.Request) bool { return strings.HasPrefix(next.URL.String(), conf.RedirectURL) }
	p := b.Get(conf.AuthCodeURL("s-0123456789abcdef", opts...))
	password, totp := d.user(t, user)
	p = b.Submit(p, map[string]string{"username": user, "password": password})
	if p.URL.Path == "/login/otp" {
		p = b.Submit(p, map[string]string{"otp": browsertest.TOTP(t, totp)})
	}
	loc := p.Location()
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code: %d at %s", p.Status, p.URL)
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.pool}}})
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok.AccessToken
}
