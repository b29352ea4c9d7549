package idp_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/crmgate/crmgate/demo/idp"
)

// The demo makes its users, registers the gateway as a client and serves the
// provider over TLS on loopback.
func Example() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	alice, aliceTOTP, err := idp.NewUser("alice", "a-generated-demo-password", []string{"sales"})
	if err != nil {
		log.Error("demo user", "error", err)
		return
	}
	p, err := idp.New(idp.Config{
		Issuer: "https://localhost:8444",
		Users:  []idp.User{alice},
		Clients: []idp.Client{{
			ID:                     "crmgate",
			Secret:                 "a-generated-client-secret-of-32-chars",
			RedirectURIs:           []string{"https://localhost:8443/auth/callback"},
			PostLogoutRedirectURIs: []string{"https://localhost:8443/"},
			BackChannelLogoutURI:   "https://localhost:8443/auth/backchannel-logout",
		}},
	}, log, time.Now)
	if err != nil {
		log.Error("dev IdP", "error", err)
		return
	}
	fmt.Println("alice's TOTP secret:", aliceTOTP)
	srv := &http.Server{Addr: "127.0.0.1:8444", Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	_ = srv.ListenAndServeTLS("idp-cert.pem", "idp-key.pem")
}
