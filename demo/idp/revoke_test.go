package idp

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// postClient calls a client-authenticated endpoint as the gateway.
func (h *harness) postClient(path string, form url.Values) (int, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(gatewayID, gatewaySecret)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestIntrospectionAndRevocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := h.newFlow(h.oauth(gatewayID, oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess))
	tok, _, _ := h.exchange(f, h.login(h.browser(), f, "alice"))

	_, got := h.postClient("/oauth/introspect", url.Values{"token": {tok.AccessToken}})
	want := map[string]any{"active": true, "sub": "alice", "client_id": gatewayID, "email": "alice@example.com", "roles": []any{"sales"}}
	for k := range got {
		if _, ok := want[k]; !ok {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("introspection (-got +want):\n%s", diff)
	}

	if status, _ := h.postClient("/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}); status != http.StatusOK {
		t.Fatalf("revoke access token: status %d", status)
	}
	if _, got := h.postClient("/oauth/introspect", url.Values{"token": {tok.AccessToken}}); got["active"] != false {
		t.Errorf("introspection after revocation = %v, want inactive", got)
	}

	if status, _ := h.postClient("/revoke", url.Values{"token": {tok.RefreshToken}}); status != http.StatusOK {
		t.Fatalf("revoke refresh token: status %d", status)
	}
	_, err := f.cfg.TokenSource(h.ctx(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after revocation error = %v, want invalid_grant", err)
	}
}

func TestExpiredLoginRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	p := b.Get(h.newFlow(h.oauth(gatewayID)).authURL)
	h.clock.Add(authRequestTTL + time.Second)
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "expired") {
		t.Errorf("expired request: status %d:\n%s", p.Status, p.Body)
	}
	if p := b.Get(h.issuer + loginPath + "?authRequestID=unknown"); p.Status != http.StatusBadRequest {
		t.Errorf("unknown request: status %d", p.Status)
	}
}
