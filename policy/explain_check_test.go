package policy

import (
	"context"
	"strings"
	"testing"
)

func TestCheckDecisions(t *testing.T) {
	tests := []struct {
		name       string
		policy     string
		entrypoint string
		want       []string // substrings of each problem, in order; none: no problem
	}{
		{name: "a default and an object", policy: `package cov

default decision := {"allow": false, "reason": "closed"}

decision := {"allow": true, "reason": concat(" ", ["ok", input.request.method])} if input.route.id == "ok"
`},
		{name: "undefined without a default", policy: `package cov

decision := {"allow": true} if input.route.id == "ok"
`, want: []string{"pol/cov.rego:3: data.cov.decision: undefined for an anonymous caller", "add a default rule"}},
		{name: "a constant decision of the wrong type", policy: `package cov

default decision := {"allow": false}

decision := {"allow": "yes"} if input.route.id == "x"
`, want: []string{"pol/cov.rego:5: data.cov.decision: the decision does not match the schema: allow: got string, want boolean"}},
		{name: "a misspelt field in a computed decision", policy: `package cov

default decision := {"allow": false}

decision := {"allow": true, "redacts": [input.route.id]} if input.route.id == "x"
`, want: []string{`pol/cov.rego:5: data.cov.decision: the decision does not match the schema: unknown field "redacts"`}},
		{name: "an else clause without allow", policy: `package cov

default decision := {"allow": false}

decision := {"allow": true} if {
	input.route.id == "x"
} else := {"reason": input.route.id} if {
	input.route.id == "y"
}
`, want: []string{"pol/cov.rego:7: data.cov.decision: the decision does not match the schema: allow is missing"}},
		{name: "a boolean", policy: `package cov

default decision := false

decision if input.route.id == "x"
`, want: []string{"pol/cov.rego:3: data.cov.decision: the decision does not match the schema: decision: got boolean", "pol/cov.rego:5:"}},
		{name: "a multi-value rule", policy: `package cov

decision contains "x" if input.route.id == "x"
`, want: []string{"pol/cov.rego:3: data.cov.decision: is a multi-value rule"}},
		{name: "an invalid decision only evaluation shows", policy: `package cov

default decision := {"allow": false}

decision := d if {
	d := {"allow": input.request.method}
}
`, want: []string{"pol/cov.rego:5: data.cov.decision: decision_invalid for an anonymous caller", "allow: got string, want boolean"}},
		{name: "conflicting clauses", policy: `package cov

decision := {"allow": true} if input.request.method == "GET"

decision := {"allow": false} if input.subject.kind == "anonymous"
`, want: []string{"data.cov.decision: policy_error for an anonymous caller"}},
		{name: "a package named as the entrypoint", entrypoint: "data.cov.sub", policy: `package cov.sub

decision := {"allow": true}
`, want: []string{"pol/cov.rego:3: data.cov.sub: names a package"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := tt.entrypoint
			if ep == "" {
				ep = "data.cov.decision"
			}
			set := compileFiles(t, "pol", map[string]string{"cov.rego": tt.policy}, ep)
			probs := set.CheckDecisions(context.Background())
			if len(tt.want) == 0 && len(probs) > 0 {
				t.Fatalf("CheckDecisions = %v, want no problem", probs)
			}
			if len(tt.want) > 0 && len(probs) == 0 {
				t.Fatalf("CheckDecisions = no problem, want %q", tt.want)
			}
			var all []string
			for _, p := range probs {
				all = append(all, p.String())
			}
			got := strings.Join(all, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("CheckDecisions =\n%s\nwant %q", got, w)
				}
			}
		})
	}
}

// The shipped set passes its own contract checks.
func TestCheckDecisionsShipped(t *testing.T) {
	src, err := ReadSource(shippedDir)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(context.Background(), src, []string{DefaultEntrypoint})
	if err != nil {
		t.Fatal(err)
	}
	if probs := set.CheckDecisions(context.Background()); len(probs) > 0 {
		t.Errorf("CheckDecisions(%s) = %v, want none", shippedDir, probs)
	}
}
