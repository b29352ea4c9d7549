package bearer

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkVerify is the request-path cost of a valid token with the
// issuer's keys cached: on its first use (the signature is checked) and
// when the client sends it again (the signature verified before with the
// same key set; the claims are checked again).
func BenchmarkVerify(b *testing.B) {
	p := newProvider(b, key("rsa"), key("ec"))
	e := newEnv(b, p, envOpts{})
	for _, k := range []string{"rsa", "ec"} {
		tok := sign(b, key(k), e.claims(), signOpts{typ: "at+jwt"})
		for _, again := range []bool{false, true} {
			name := string(key(k).alg) + "/first"
			if again {
				name = string(key(k).alg) + "/again"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !again {
						e.v.verified.clear()
					}
					if _, err := e.v.Verify(b.Context(), tok); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyUnknownIssuer is the cost of refusing a token of an
// issuer the gateway does not trust: no key lookup, no signature check.
func BenchmarkVerifyUnknownIssuer(b *testing.B) {
	p := newProvider(b, key("rsa"))
	e := newEnv(b, p, envOpts{})
	tok := sign(b, key("attackerRSA"), e.claimsWith(func(c map[string]any) { c["iss"] = "https://attacker.example" }), signOpts{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.v.Verify(b.Context(), tok); err == nil {
			b.Fatal("verified")
		}
	}
}

func BenchmarkExtract(b *testing.B) {
	r := httptest.NewRequest("GET", "https://crm.example.com/api", nil)
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.c2lnbmF0dXJl")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(r); err != nil {
			b.Fatal(err)
		}
	}
}
