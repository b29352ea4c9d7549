package policy

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/cover"
)

// compileFiles compiles an in-memory set whose folder is named dir.
func compileFiles(t *testing.T, dir string, files map[string]string, entrypoints ...string) *Set {
	t.Helper()
	b := make(map[string][]byte, len(files))
	for name, s := range files {
		b[name] = []byte(s)
	}
	src, err := NewSource(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(entrypoints) == 0 {
		entrypoints = []string{"data.cov.decision"}
	}
	set, err := Compile(context.Background(), src, entrypoints)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return set
}

// coverPolicy has a rule on lines 5-7 that only an admin reaches; its
// measured lines are 3, 5, 6 and 9.
const coverPolicy = `package cov

default decision := {"allow": false}

decision := {"allow": true, "reason": "admin"} if {
	"admin" in input.subject.roles
}

decision := {"allow": true, "reason": "open"} if input.route.id == "open"
`

const coverTestOpenOnly = `package cov_test

import data.cov

test_open if cov.decision.allow with input as {"route": {"id": "open"}, "subject": {"roles": []}}

test_default_denies if not cov.decision.allow with input as {"route": {"id": "x"}, "subject": {"roles": []}}
`

const coverTestAll = coverTestOpenOnly + `
test_admin if cov.decision.allow with input as {"route": {"id": "x"}, "subject": {"roles": ["admin"]}}
`

func TestCoverage(t *testing.T) {
	tests := []struct {
		name          string
		tests         string
		wantCoverage  float64
		wantUncovered []string
	}{
		{name: "a rule no test reaches", tests: coverTestOpenOnly, wantCoverage: 50,
			wantUncovered: []string{"pol/cov.rego:5-6"}},
		{name: "every rule tested", tests: coverTestAll, wantCoverage: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := compileFiles(t, "pol", map[string]string{"cov.rego": coverPolicy, "cov_test.rego": tt.tests})
			rep, err := set.Test(context.Background(), time.Minute, WithCoverage())
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("tests: %s", rep)
			}
			c := rep.Coverage
			if c == nil {
				t.Fatal("Test(WithCoverage()).Coverage = nil")
			}
			if diff := cmp.Diff(c.Coverage, tt.wantCoverage, cmpEpsilon); diff != "" {
				t.Errorf("Coverage (-got +want):\n%s", diff)
			}
			files := c.Files()
			if len(files) != 1 || files[0].File != "pol/cov.rego" {
				t.Fatalf("Files() = %+v, want pol/cov.rego alone (tests are not measured)", files)
			}
			var got []string
			for _, r := range files[0].Uncovered {
				got = append(got, r.String())
			}
			if diff := cmp.Diff(got, tt.wantUncovered); diff != "" {
				t.Errorf("Uncovered (-got +want):\n%s", diff)
			}
		})
	}
}

var cmpEpsilon = cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })

// The report is OPA's, so its JSON is what `opa test --coverage` prints.
func TestCoverageJSON(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"cov.rego": coverPolicy, "cov_test.rego": coverTestOpenOnly})
	rep, err := set.Test(context.Background(), time.Minute, WithCoverage())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep.Coverage)
	if err != nil {
		t.Fatal(err)
	}
	var back cover.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	fr := back.Files["pol/cov.rego"]
	if fr == nil || len(back.Files) != 1 || back.CoveredLines != 2 || back.NotCoveredLines != 2 || len(fr.NotCovered) == 0 {
		t.Errorf("coverage JSON = %s, want pol/cov.rego with 2 lines covered and 2 not", b)
	}
}

// Without the option, as on every reload, nothing is measured.
func TestCoverageOffByDefault(t *testing.T) {
	set := compileFiles(t, "pol", map[string]string{"cov.rego": coverPolicy, "cov_test.rego": coverTestAll})
	rep, err := set.Test(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Coverage != nil || rep.Passed != 3 {
		t.Errorf("Test() = %s, coverage %v; want 3 passed and no coverage", rep, rep.Coverage)
	}
}

func TestLineRanges(t *testing.T) {
	rng := func(a, b int, kinds ...cover.Kind) cover.Range {
		return cover.Range{Start: cover.Position{Row: a, Col: 1}, End: cover.Position{Row: b, Col: 9}, Kinds: kinds}
	}
	got := lineRanges("f.rego", []cover.Range{
		rng(3, 3, cover.KindIndexExcluded), rng(4, 5, cover.KindIndexExcluded), rng(5, 5),
		rng(9, 9, cover.KindEarlyExit), rng(9, 9, cover.KindEarlyExit), rng(12, 12),
	})
	want := []LineRange{
		{File: "f.rego", Start: 3, End: 5},
		{File: "f.rego", Start: 9, End: 9, Kinds: []cover.Kind{cover.KindEarlyExit}},
		{File: "f.rego", Start: 12, End: 12},
	}
	if diff := cmp.Diff(got, want, cmp.Comparer(func(a, b []cover.Kind) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) })); diff != "" {
		t.Errorf("lineRanges (-got +want):\n%s", diff)
	}
}
