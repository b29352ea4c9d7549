package policy_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/scope"
)

// The engine is loaded once with the entrypoints the routes name, and then
// decides each request on the input built from its scope.
func ExampleEngine() {
	// EvalTimeout bounds one decision (50ms by default); this example
	// allows a busy machine more.
	cfg := policy.Config{Dir: "../policies", EvalTimeout: 2 * time.Second}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		log.Fatal(err)
	}
	eng, err := policy.New(cfg, policy.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Load compiles the folder and runs its tests; a set whose tests fail
	// never becomes active. Watch (on its own goroutine) reloads it.
	if err := eng.Load(context.Background()); err != nil {
		log.Fatal(err)
	}

	s := &scope.Scope{
		ID:       "req-1",
		Start:    time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		ClientIP: netip.MustParseAddr("203.0.113.7"),
		Method:   "GET",
		Path:     "/api/contacts",
		Route:    &scope.Route{ID: "contacts.list", Tags: []string{"pii"}},
		Subject:  &scope.Subject{Kind: scope.KindUser, ID: "alice", Roles: []string{"sales"}},
	}
	r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts", nil)

	d := eng.Decide(context.Background(), eng.Input(s, r), s.Route.Policy)
	fmt.Println(d.Allow, d.Reason)
	for _, f := range d.Filter {
		fmt.Println("keep", f.Path, "where", f.KeepWhere)
	}
	for _, x := range d.Redact {
		fmt.Println(x.Action, x.Path)
	}
	// Output:
	// true sales may GET contacts.list
	// keep $.items where map[owner:alice]
	// remove $..ssn
	// mask $..credit_card
}

// Every failure of the policy is a deny whose reason says what failed.
func ExampleEngine_Decide_failure() {
	cfg := policy.Config{Dir: "testdata/basic", Entrypoint: "data.fixture.decision"}
	cfg.Defaults()
	eng, err := policy.New(cfg, policy.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := eng.Load(context.Background()); err != nil {
		log.Fatal(err)
	}
	s := &scope.Scope{Method: "GET", Path: "/", Route: &scope.Route{ID: "allow_string"}}
	d := eng.Decide(context.Background(), eng.Input(s, httptest.NewRequest("GET", "/", nil)), "")
	fmt.Println(d.Allow, d.Reason, d.Error)
	// Output:
	// false decision_invalid allow: got string, want boolean
}
