package bearer_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/crmgate/crmgate/auth/bearer"
	"github.com/crmgate/crmgate/scope"
)

// An identity stage that accepts bearer access tokens: 401 with
// WWW-Authenticate for a bad token (RFC 6750 §3.1), 503 while the
// issuer's keys are unavailable.
func Example() {
	v, err := bearer.New(bearer.Config{Issuers: []bearer.IssuerConfig{{
		Issuer:      "https://idp.example.com/realms/crm",
		Audience:    "https://crm.example.com/api",
		RequireType: "at+jwt",
	}}}, nil, slog.Default(), nil)
	if err != nil {
		panic(err)
	}
	// Start runs once, with the server's lifetime as ctx; it does not
	// wait for the provider.
	if err := v.Start(context.Background()); err != nil {
		panic(err)
	}

	var next http.Handler // the rest of the pipeline
	identify := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := bearer.Extract(r)
		if errors.Is(err, bearer.ErrNoToken) {
			next.ServeHTTP(w, r) // another method may identify the caller
			return
		}
		var sub *scope.Subject
		if err == nil {
			sub, err = v.Verify(r.Context(), raw)
		}
		switch {
		case errors.Is(err, bearer.ErrUnavailable):
			http.Error(w, "try again later", http.StatusServiceUnavailable)
			return
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		_ = sub // hand sub to the policy stage through the request scope
		next.ServeHTTP(w, r)
	})
	_ = identify
}
