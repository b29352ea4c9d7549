package policy_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/scope"
)

// A Remote asks an OPA server for each decision. Here a stand-in answers
// as a server with a faulty policy would: a string where a boolean
// belongs is decision_invalid, a deny, exactly as embedded.
func ExampleRemote() {
	opa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/data/crmgate/authz/decision" {
			_, _ = io.WriteString(w, `{"result": {"allow": "true"}}`)
		}
	}))
	defer opa.Close()

	// The deadline covers the round trip and OPA's evaluation (100ms by
	// default); this example allows a busy machine more.
	cfg := policy.Config{Server: &policy.ServerConfig{URL: opa.URL, Timeout: 2 * time.Second}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	rem, err := policy.NewRemote(cfg, policy.Options{}, policy.RemoteOptions{})
	if err != nil {
		log.Fatal(err)
	}
	// Start prepares the entrypoints and the connection pool; a server
	// that is not up yet is no error (every decision is then a deny).
	if err := rem.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer rem.Close()

	s := &scope.Scope{Method: "GET", Path: "/api/contacts", Route: &scope.Route{ID: "contacts.list"}}
	d := rem.Decide(context.Background(), rem.Input(s, httptest.NewRequest("GET", "/api/contacts", nil)), "")
	fmt.Println(d.Allow, d.Reason, d.Error)
	// Output:
	// false decision_invalid allow: got string, want boolean
}
