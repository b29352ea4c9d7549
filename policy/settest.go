package policy

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/crmgate/crmgate/scope"
)

// TestReport is the outcome of running a set's tests.
type TestReport struct {
	Passed, Failed, Errored, Skipped int
	// Problems lists the tests that failed or errored, sorted.
	Problems []TestProblem
	// Coverage is how much of the enforced modules the tests evaluated;
	// nil unless the run measured it (WithCoverage).
	Coverage *CoverageReport
}

// TestOption changes how Set.Test runs the tests.
type TestOption func(*testOptions)

type testOptions struct {
	coverage bool
}

// WithCoverage measures which lines of the enforced modules the tests
// evaluate, as `opa test --coverage` does (TestReport.Coverage). Like
// OPA, it evaluates each test up to twice more, without rule indexing and
// without early exit, to say why a line was not reached; it is for the
// policy tooling, not for reloads.
func WithCoverage() TestOption { return func(o *testOptions) { o.coverage = true } }

// TestProblem is a test that failed or errored.
type TestProblem struct {
	// Name is the test rule, e.g. data.crmgate.authz_test.test_sales_list.
	Name string
	// Location is file:line of the test.
	Location string
	// Error is the evaluation error; empty when the test was merely false
	// or undefined.
	Error string
}

// OK reports whether no test failed or errored.
func (r *TestReport) OK() bool { return r.Failed == 0 && r.Errored == 0 }

// Total is the number of tests run, skipped ones included.
func (r *TestReport) Total() int { return r.Passed + r.Failed + r.Errored + r.Skipped }

func (r *TestReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d passed, %d failed, %d errored, %d skipped", r.Passed, r.Failed, r.Errored, r.Skipped)
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (p TestProblem) String() string {
	s := p.Location + ": " + p.Name
	if p.Error != "" {
		return s + ": ERROR: " + p.Error
	}
	return s + ": FAIL"
}

// TestFailedError is a set whose own tests do not pass.
type TestFailedError struct {
	Dir    string
	Report *TestReport
}

func (e *TestFailedError) Error() string {
	return fmt.Sprintf("policy set %s: tests do not pass: %s", e.Dir, e.Report)
}

// Test runs the set's *_test.rego tests with OPA's test runner against the
// set's modules and data, as `opa test DIR` would, each test bounded by
// perTest and the run by ctx. Built-in errors in a test are errors, as
// they are when the set decides. The error is for a run that could not
// start (the tests do not compile: a *CompileError); failing tests are in
// the report. Without options it measures nothing beyond pass and fail,
// which is what a reload needs.
func (s *Set) Test(ctx context.Context, perTest time.Duration, opts ...TestOption) (*TestReport, error) {
	var o testOptions
	for _, opt := range opts {
		opt(&o)
	}
	runner := tester.NewRunner().
		SetCompiler(newCompiler()).
		SetStore(s.store).
		SetModules(s.modules).
		SetTimeout(perTest).
		RaiseBuiltinErrors(true).
		EnableTracing(false)
	var cov *cover.Cover
	if o.coverage {
		cov = cover.New()
		runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, nil)
	if err != nil {
		return nil, &CompileError{Dir: s.src.Dir, Err: fmt.Errorf("tests: %w", err)}
	}
	rep := &TestReport{}
	for r := range ch {
		switch {
		case r.Skip:
			rep.Skipped++
		case r.Error != nil:
			rep.Errored++
			rep.Problems = append(rep.Problems, s.src.problem(r, r.Error.Error()))
		case r.Fail:
			rep.Failed++
			rep.Problems = append(rep.Problems, s.src.problem(r, ""))
		default:
			rep.Passed++
		}
	}
	if err := ctx.Err(); err != nil {
		// The runner stops on cancellation without reporting the tests
		// it did not run: the run is incomplete, so it did not pass.
		return nil, fmt.Errorf("policy set %s: tests interrupted: %w", s.src.Dir, err)
	}
	slices.SortFunc(rep.Problems, func(a, b TestProblem) int { return strings.Compare(a.Location+a.Name, b.Location+b.Name) })
	if cov != nil {
		rep.Coverage = s.coverage(cov)
	}
	return rep, nil
}

func (src *Source) problem(r *tester.Result, msg string) TestProblem {
	p := TestProblem{Name: r.Package + "." + r.Name, Error: msg}
	if r.Location != nil {
		p.Location = fmt.Sprintf("%s:%d", src.path(r.Location.File), r.Location.Row)
	}
	return p
}

// CheckProblem is a way a set's decisions break the decision contract
// (docs/policy.md, "The decision"), found by CheckDecisions.
type CheckProblem struct {
	// Location is file:line of the rule clause at fault, the file joined
	// to the set's folder.
	Location string
	// Entrypoint is the entrypoint concerned, canonical form.
	Entrypoint string
	Msg        string
}

func (p CheckProblem) String() string { return p.Location + ": " + p.Entrypoint + ": " + p.Msg }

// checkTimeout bounds each evaluation CheckDecisions makes.
const checkTimeout = 5 * time.Second

// CheckDecisions checks that every prepared entrypoint gives decisions the
// gateway can decode, before a request ever meets the set:
//
//   - statically, every clause of the entrypoint rule (default and else
//     clauses included) whose value is written out must be a decision
//     object: an object with allow, no unknown field and, where the value
//     is constant, every field valid; a function or a multi-value
//     (contains) rule is never one;
//   - then it decides a few synthetic requests (an anonymous caller, a
//     user, an API key and a service client, none with roles or scopes, on
//     a route the set does not know) and requires a decision that is not
//     decision_invalid, policy_error or policy_timeout. A decision that is
//     undefined for them is a problem too: every such request would be
//     denied as policy_undefined, with no reason of the policy's own; a
//     default rule for the entrypoint (the documented practice) settles
//     it.
//
// The checks cannot prove every input decodes; the set's own tests and
// the engine's strict decoding (a deny on anything invalid) remain.
func (s *Set) CheckDecisions(ctx context.Context) []CheckProblem {
	var out []CheckProblem
	seen := map[CheckProblem]bool{}
	add := func(p CheckProblem) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, ep := range s.entrypoints {
		ref := ast.MustParseRef(ep)
		rules := s.compiler.GetRulesExact(ref)
		if len(rules) == 0 {
			// Compile only prepares entrypoints that some rule defines:
			// this one names a package or the start of a rule's name,
			// whose value is an object of rules, not a decision.
			loc := ""
			if rs := s.compiler.GetRules(ref); len(rs) > 0 {
				loc = s.location(rs[0].Location)
			}
			add(CheckProblem{loc, ep, "names a package or part of a rule's name, not a rule: its value is not a decision"})
			continue
		}
		for _, p := range s.checkRules(ep, s.parsedRules(ref)) {
			add(p)
		}
		for _, p := range s.checkSynthetic(ctx, ep, rules) {
			add(p)
		}
	}
	return out
}

// location is file:line of l, the file joined to the set's folder.
func (s *Set) location(l *ast.Location) string {
	if l == nil {
		return s.src.Dir
	}
	return fmt.Sprintf("%s:%d", s.src.path(l.File), l.Row)
}

// parsedRules are the rules of the enforced modules that define ref, as
// written: the compiled ones have their values rewritten.
func (s *Set) parsedRules(ref ast.Ref) []*ast.Rule {
	var out []*ast.Rule
	for _, name := range slices.Sorted(maps.Keys(s.modules)) {
		m := s.modules[name]
		if isTestFile(name) {
			continue
		}
		for _, r := range m.Rules {
			if m.Package.Path.Extend(r.Head.Ref()).Equal(ref) {
				out = append(out, r)
			}
		}
	}
	return out
}

// checkRules checks the written-out values of the clauses of rules.
func (s *Set) checkRules(ep string, rules []*ast.Rule) []CheckProblem {
	var out []CheckProblem
	for _, r := range rules {
		switch {
		case len(r.Head.Args) > 0:
			out = append(out, CheckProblem{s.location(r.Location), ep, "is a function, not a rule with a decision value"})
			continue
		case r.Head.RuleKind() == ast.MultiValue:
			out = append(out, CheckProblem{s.location(r.Location), ep, "is a multi-value rule (contains): its value is a set, not a decision object"})
			continue
		}
		for c := r; c != nil; c = c.Else {
			if msg := checkDecisionTerm(c.Head.Value); msg != "" {
				out = append(out, CheckProblem{s.location(c.Location), ep, msg})
			}
		}
	}
	return out
}

// checkDecisionTerm says what is wrong with a clause's value, as far as it
// is written out: a reference or call is left to the evaluation.
func checkDecisionTerm(t *ast.Term) string {
	if t == nil {
		return ""
	}
	if isConstant(t) {
		if _, err := decodeDecision(t.Value); err != nil {
			return "the decision does not match the schema: " + err.Error()
		}
		return ""
	}
	switch v := t.Value.(type) {
	case ast.Object:
		var msgs []string
		if v.Get(ast.InternedTerm("allow")) == nil {
			msgs = append(msgs, "allow is missing")
		}
		for _, k := range v.Keys() {
			name, ok := k.Value.(ast.String)
			switch {
			case !ok:
				msgs = append(msgs, fmt.Sprintf("field %v is not a string", k))
			case !slices.Contains(decisionFields, string(name)):
				msgs = append(msgs, fmt.Sprintf("unknown field %q (allowed: %s)", string(name), strings.Join(decisionFields, ", ")))
			}
		}
		if a := v.Get(ast.InternedTerm("allow")); a != nil && isConstant(a) {
			if _, ok := a.Value.(ast.Boolean); !ok {
				msgs = append(msgs, fmt.Sprintf("allow is %v, want true or false", a))
			}
		}
		if len(msgs) > 0 {
			return "the decision does not match the schema: " + strings.Join(msgs, "; ")
		}
	case *ast.Array, ast.Set, *ast.ArrayComprehension, *ast.SetComprehension:
		return fmt.Sprintf("the decision is %s, want an object with at least allow", ast.ValueName(v))
	}
	return ""
}

// isConstant reports whether t is written out in full: no variable,
// reference (input, data, a rule), call or comprehension in it.
func isConstant(t *ast.Term) bool {
	constant := true
	ast.WalkVars(t, func(ast.Var) bool {
		constant = false
		return true
	})
	return constant
}

// syntheticSubjects are the callers CheckDecisions decides, by what the
// problems call them; a user signed in at now.
func syntheticSubjects(now time.Time) []struct {
	name string
	sub  *scope.Subject
} {
	return []struct {
		name string
		sub  *scope.Subject
	}{
		{"an anonymous caller", &scope.Subject{Kind: scope.KindAnonymous}},
		{"a user without roles", &scope.Subject{Kind: scope.KindUser, ID: "check-user", AMR: []string{"pwd"}, AuthTime: now}},
		{"an API key without scopes", &scope.Subject{Kind: scope.KindAPIKey, ID: "check-key",
			APIKey: &scope.APIKey{ID: "check-key", Name: "check"}}},
		{"a service client without roles", &scope.Subject{Kind: scope.KindService, ID: "check-service"}},
	}
}

// checkSynthetic decides the synthetic requests on ep.
func (s *Set) checkSynthetic(ctx context.Context, ep string, rules []*ast.Rule) []CheckProblem {
	hasDefault := slices.ContainsFunc(rules, func(r *ast.Rule) bool { return r.Default })
	now := time.Now().UTC().Truncate(time.Second)
	b := NewInputBuilder(nil, nil)
	var out []CheckProblem
	for _, c := range syntheticSubjects(now) {
		sc := &scope.Scope{ID: "policy-check", Start: now, Method: "GET", Path: "/",
			Route: &scope.Route{ID: "check"}, Subject: c.sub}
		if c.sub.Kind == scope.KindUser {
			sc.Session = &scope.Session{Created: now}
		}
		in := b.Build(sc, &http.Request{Method: "GET", Host: "localhost", URL: &url.URL{Path: "/"}, Header: http.Header{}})
		d := s.Decide(ctx, in, ep, checkTimeout)
		var msg string
		switch d.Reason {
		case ReasonUndefined:
			if hasDefault || !d.Failed() {
				continue
			}
			msg = fmt.Sprintf("undefined for %s (GET /, a route the set does not know), so every such request is denied as policy_undefined; add a default rule, e.g. default %s := {\"allow\": false, \"reason\": \"…\"}",
				c.name, ref1(ep))
		case ReasonDecisionInvalid, ReasonError, ReasonTimeout:
			if !d.Failed() {
				continue
			}
			msg = fmt.Sprintf("%s for %s (GET /, a route the set does not know): %s", d.Reason, c.name, d.Error)
		default:
			continue
		}
		loc := s.location(rules[0].Location)
		if d.Reason != ReasonUndefined {
			// The clause that gave the answer, when the trace says.
			if _, ex, err := s.Explain(ctx, in, ep, ExplainRules); err == nil {
				for _, h := range ex.Rules {
					if h.Rule == ep {
						loc = fmt.Sprintf("%s:%d", h.File, h.Line)
						break
					}
				}
			}
		}
		out = append(out, CheckProblem{loc, ep, msg})
	}
	return out
}

// ref1 is the last part of a rule reference: its name in its package.
func ref1(ep string) string { return ep[strings.LastIndexByte(ep, '.')+1:] }
