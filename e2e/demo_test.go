package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The demo.json contract (README, PRODUCT.md): the development OpenID
// provider and the four demo users with their roles and credentials.
func TestDemoContract(t *testing.T) {
	d := startDemo(t)
	want := map[string]string{"alice": "sales", "bob": "finance", "carol": "admin", "dave": "support"}
	if len(d.Users) != len(want) {
		t.Fatalf("demo.json users = %d, want %d", len(d.Users), len(want))
	}
	for _, u := range d.Users {
		if role, ok := want[u.Username]; !ok || !slices.Equal(u.Roles, []string{role}) {
			t.Errorf("user %q roles %v, want [%s]", u.Username, u.Roles, role)
		}
		if len(u.Password) < 12 || len(u.TOTPSecret) < 16 {
			t.Errorf("user %q has a weak generated password or TOTP secret", u.Username)
		}
	}
	if !strings.HasPrefix(d.IdPURL, "https://localhost:") {
		t.Fatalf("idp_url = %q", d.IdPURL)
	}
	res, err := d.client.Get(d.IdPURL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var disc struct {
		Issuer string   `json:"issuer"`
		PKCE   []string `json:"code_challenge_methods_supported"`
	}
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &disc); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("discovery = %d %s", res.StatusCode, b)
	}
	if disc.Issuer != d.IdPURL || !slices.Equal(disc.PKCE, []string{"S256"}) {
		t.Errorf("discovery issuer %q, PKCE %v; want %q and S256 only", disc.Issuer, disc.PKCE, d.IdPURL)
	}
}
