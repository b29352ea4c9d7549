package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// TestReport is the outcome of running a set's tests.
type TestReport struct {
	Passed, Failed, Errored, Skipped int
	// Problems lists the tests that failed or errored, sorted.
	Problems []TestProblem
}

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
// the report.
func (s *Set) Test(ctx context.Context, perTest time.Duration) (*TestReport, error) {
	runner := tester.NewRunner().
		SetCompiler(newCompiler()).
		SetStore(s.store).
		SetModules(s.modules).
		SetTimeout(perTest).
		RaiseBuiltinErrors(true).
		EnableTracing(false)
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
	return rep, nil
}

func (src *Source) problem(r *tester.Result, msg string) TestProblem {
	p := TestProblem{Name: r.Package + "." + r.Name, Error: msg}
	if r.Location != nil {
		p.Location = fmt.Sprintf("%s:%d", src.path(r.Location.File), r.Location.Row)
	}
	return p
}
