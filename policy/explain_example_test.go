package policy_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/scope"
)

// Tools explain a decision with the rules that made it, and measure what
// a set's tests cover; neither is on the gateway's request path.
func ExampleSet_Explain() {
	src, err := policy.NewSource("pol", map[string][]byte{"authz.rego": []byte(`package authz

default decision := {"allow": false, "reason": "closed"}

decision := {"allow": true, "reason": "finance reads invoices"} if {
	input.route.id == "invoices.list"
	finance
}

finance if "finance" in input.subject.roles
`)})
	if err != nil {
		log.Fatal(err)
	}
	set, err := policy.Compile(context.Background(), src, []string{"data.authz.decision"})
	if err != nil {
		log.Fatal(err)
	}
	s := &scope.Scope{
		Start:   time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		Method:  "GET",
		Path:    "/api/invoices",
		Route:   &scope.Route{ID: "invoices.list"},
		Subject: &scope.Subject{Kind: scope.KindUser, ID: "bob", Roles: []string{"finance"}},
	}
	in := policy.NewInputBuilder(nil, nil).Build(s, httptest.NewRequest("GET", "/api/invoices", nil))
	d, ex, err := set.Explain(context.Background(), in, "data.authz.decision", policy.ExplainRules)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow, d.Reason)
	for _, h := range ex.Rules {
		fmt.Println(h)
	}
	// Output:
	// true finance reads invoices
	// pol/authz.rego:5: decision := {"allow": true, "reason": "finance reads invoices"} if {
	// pol/authz.rego:10: finance if "finance" in input.subject.roles
}
