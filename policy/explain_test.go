package policy

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/scope"
)

// explainPolicy's clauses sit on the lines its tests name.
const explainPolicy = `package ex

default decision := {"allow": false, "reason": "default"}

decision := {"allow": false, "reason": "blocked"} if {
	blocked
} else := granted if {
	role_ok
}

blocked if input.subject.id == "mallory"

role_ok if {
	"admin" in input.subject.roles
	trace("role_ok: admin found")
}

granted := {"allow": true, "reason": concat(" ", ["admin may", input.request.method])}
`

const explainTests = `package ex_test

import data.ex

test_admin if ex.decision.allow with input as {"subject": {"id": "x", "roles": ["admin"]}, "request": {"method": "GET"}}
`

func explainInput(id string, roles ...string) *Input {
	s := reqScope("GET", "/x", "x", nil)
	s.Subject = &scope.Subject{Kind: scope.KindUser, ID: id, Roles: roles}
	return NewInputBuilder(nil, nil).Build(s, httptest.NewRequest("GET", "/x", nil))
}

func TestExplainRules(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"ex.rego": explainPolicy, "ex_test.rego": explainTests}, "data.ex.decision")
	tests := []struct {
		name      string
		in        *Input
		wantAllow bool
		want      []string // RuleHit.String()
	}{
		{name: "the else clause and what it used", in: explainInput("alice", "admin"), wantAllow: true, want: []string{
			"pol/ex.rego:7: decision, clause 2: else := granted if {",
			"pol/ex.rego:13: role_ok if {",
			`pol/ex.rego:18: granted := {"allow": true, "reason": concat(" ", ["admin may", input.request.method])}`,
		}},
		{name: "the first clause", in: explainInput("mallory", "admin"), want: []string{
			`pol/ex.rego:5: decision := {"allow": false, "reason": "blocked"} if {`,
			`pol/ex.rego:11: blocked if input.subject.id == "mallory"`,
		}},
		{name: "the default", in: explainInput("bob"), want: []string{
			`pol/ex.rego:3: default decision := {"allow": false, "reason": "default"}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ex, err := set.Explain(context.Background(), tt.in, "data.ex.decision", "")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.wantAllow || d.Failed() {
				t.Errorf("Explain decision = %+v, want allow %v", d, tt.wantAllow)
			}
			want := set.Decide(context.Background(), tt.in, "data.ex.decision", checkTimeout)
			if diff := cmp.Diff(d, want, cmpopts.IgnoreFields(Decision{}, "Elapsed", "Memo")); diff != "" {
				t.Errorf("Explain's decision differs from Decide's (-got +want):\n%s", diff)
			}
			var got []string
			for _, h := range ex.Rules {
				got = append(got, h.String())
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Explain rules (-got +want):\n%s", diff)
			}
			if ex.Trace != "" {
				t.Errorf("Explain(rules).Trace = %q, want none", ex.Trace)
			}
		})
	}
}

func TestExplainRuleHit(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"ex.rego": explainPolicy}, "data.ex.decision")
	_, ex, err := set.Explain(context.Background(), explainInput("alice", "admin"), "data.ex.decision", ExplainRules)
	if err != nil {
		t.Fatal(err)
	}
	want := RuleHit{Rule: "data.ex.decision", File: "pol/ex.rego", Line: 7, Clause: 2, Source: "else := granted if {"}
	if len(ex.Rules) == 0 || ex.Rules[0] != want {
		t.Errorf("Explain rules[0] = %+v, want %+v", ex.Rules, want)
	}
}

func TestExplainTrace(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"ex.rego": explainPolicy}, "data.ex.decision")
	tests := []struct {
		mode string
		in   *Input
		want []string // substrings of the trace
	}{
		{mode: ExplainNotes, in: explainInput("alice", "admin"), want: []string{"pol/ex.rego:15", "Note \"role_ok: admin found\""}},
		{mode: ExplainFails, in: explainInput("bob"), want: []string{"pol/ex.rego:6", "Fail data.ex.blocked", "pol/ex.rego:8", "Fail data.ex.role_ok"}},
		{mode: ExplainFull, in: explainInput("bob"), want: []string{"Enter data.ex.decision", "pol/ex.rego:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			_, ex, err := set.Explain(context.Background(), tt.in, "data.ex.decision", tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(ex.Trace, w) {
					t.Errorf("Explain(%s).Trace lacks %q:\n%s", tt.mode, w, ex.Trace)
				}
			}
		})
	}
}

func TestExplainErrors(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"ex.rego": explainPolicy}, "data.ex.decision")
	if _, _, err := set.Explain(context.Background(), explainInput("bob"), "data.ex.decision", "verbose"); err == nil {
		t.Error("Explain(mode verbose) = nil error, want an unknown mode")
	}
	if _, _, err := set.Explain(context.Background(), explainInput("bob"), "data.ex.other", ""); err == nil {
		t.Error("Explain(unprepared entrypoint) = nil error")
	}
	// An input that cannot be represented is a deny, explained by nothing.
	bad := explainInput("bob\xff")
	d, ex, err := set.Explain(context.Background(), bad, "data.ex.decision", ExplainFull)
	if err != nil || d.Reason != ReasonInputInvalid || len(ex.Rules) != 0 {
		t.Errorf("Explain(invalid input) = %+v, %+v, %v; want an input_invalid deny", d, ex, err)
	}
}
