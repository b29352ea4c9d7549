package bearer

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sentinels are the errors every failure of Verify or Extract wraps.
var sentinels = []error{ErrNoToken, ErrMalformed, ErrTooLarge, ErrUnknownIssuer, ErrInvalidSignature,
	ErrExpired, ErrNotYetValid, ErrInvalidAudience, ErrNotAccessToken, ErrUnavailable}

func wrapsSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Arbitrary strings never panic and never verify. The seeds added here
// are signed with the issuer's own keys but each has one flaw, so that
// mutations reach the checks after the signature.
func FuzzVerify(f *testing.F) {
	p := newProvider(f, key("rsa"), key("ec"))
	e := newEnv(f, p, envOpts{})
	now := e.clock.Now()
	for _, flawed := range []func(c map[string]any){
		func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() },
		func(c map[string]any) { delete(c, "exp") },
		func(c map[string]any) { c["aud"] = []string{"https://other.example"} },
		func(c map[string]any) { c["nonce"] = "n" },
		func(c map[string]any) { c["typ"] = "ID" },
		func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() },
		func(c map[string]any) { c["sub"] = "" },
	} {
		c := e.claimsWith(flawed)
		f.Add(sign(f, key("rsa"), c, signOpts{}))
		f.Add(sign(f, key("ec"), c, signOpts{noKid: true, typ: "at+jwt"}))
	}
	f.Add(sign(f, key("attackerRSA"), e.claims(), signOpts{kid: "rsa-1"}))
	f.Fuzz(func(t *testing.T, raw string) {
		sub, err := e.v.Verify(t.Context(), raw)
		if err == nil || sub != nil {
			t.Fatalf("Verify(%q) = %+v, %v: a token nobody signed verified", raw, sub, err)
		}
		if !wrapsSentinel(err) || errors.Is(err, ErrNoToken) {
			t.Fatalf("Verify(%q) = %v, which wraps no Verify sentinel", raw, err)
		}
	})
}

// Extract never panics, returns only token68 strings that are exactly
// what followed "Bearer " in the one header, and fails with a sentinel.
func FuzzExtract(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln", false)
	f.Fuzz(func(t *testing.T, value string, twice bool) {
		r := httptest.NewRequest("GET", "https://crm.example.com/api", nil)
		r.Header["Authorization"] = []string{value}
		if twice {
			r.Header.Add("Authorization", value)
		}
		tok, err := Extract(r)
		if err != nil {
			if tok != "" {
				t.Fatalf("Extract(%q) = %q with error %v", value, tok, err)
			}
			if !errors.Is(err, ErrNoToken) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Extract(%q) = %v, want ErrNoToken or ErrMalformed", value, err)
			}
			return
		}
		if twice {
			t.Fatalf("Extract(two headers %q) = %q, want an error", value, tok)
		}
		if !isToken68(tok) || len(value) != len("Bearer ")+len(tok) ||
			!strings.EqualFold(value[:len("Bearer ")], "Bearer ") || value[len("Bearer "):] != tok {
			t.Fatalf("Extract(%q) = %q, not the token68 after the Bearer scheme", value, tok)
		}
	})
}
