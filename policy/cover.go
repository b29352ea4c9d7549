package policy

import (
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
)

// CoverageReport is how much of a set's enforced modules its own tests
// evaluate, measured as `opa test --coverage` measures it: OPA's cover
// tracer records every rule head and expression a test evaluated, and a
// line is covered when something on it was. Test modules are not
// measured.
type CoverageReport struct {
	// Report is OPA's report of the enforced modules, files named by their
	// path joined to the set's folder; its JSON is that of
	// `opa test --coverage DIR`. Lines that only rule indexing or early
	// exit kept the tests from evaluating are not covered, and their
	// ranges say so in Kinds, as OPA's do.
	cover.Report
}

// FileCoverage is the coverage of one enforced module.
type FileCoverage struct {
	// File is the module's path joined to the set's folder.
	File string
	// Coverage is the percentage of its measured lines that are covered.
	Coverage float64
	// CoveredLines and NotCoveredLines count measured lines.
	CoveredLines, NotCoveredLines int
	// Uncovered are the line ranges no test evaluated, in order.
	Uncovered []LineRange
}

// LineRange is a range of lines of a file, both ends included.
type LineRange struct {
	File       string
	Start, End int
	// Kinds are set when every not-covered range on these lines carries
	// them: cover.KindIndexExcluded (the tests would have evaluated them
	// without OPA's rule indexing) or cover.KindEarlyExit (without early
	// exit).
	Kinds []cover.Kind
}

// String is file:line or file:start-end, which editors open.
func (r LineRange) String() string {
	if r.Start == r.End {
		return fmt.Sprintf("%s:%d", r.File, r.Start)
	}
	return fmt.Sprintf("%s:%d-%d", r.File, r.Start, r.End)
}

// Files lists the coverage of every enforced module, sorted by file.
func (c *CoverageReport) Files() []FileCoverage {
	out := make([]FileCoverage, 0, len(c.Report.Files))
	for _, name := range slices.Sorted(maps.Keys(c.Report.Files)) {
		fr := c.Report.Files[name]
		out = append(out, FileCoverage{
			File:            name,
			Coverage:        fr.Coverage,
			CoveredLines:    fr.CoveredLines,
			NotCoveredLines: fr.NotCoveredLines,
			Uncovered:       lineRanges(name, fr.NotCovered),
		})
	}
	return out
}

// coverage turns what cov traced during the tests into the report of the
// enforced modules.
func (s *Set) coverage(cov *cover.Cover) *CoverageReport {
	enforced := make(map[string]*ast.Module, len(s.modules))
	for name, m := range s.modules {
		if !isTestFile(name) {
			enforced[name] = m
		}
	}
	all := cov.Report(enforced)
	rep := &CoverageReport{Report: cover.Report{Files: make(map[string]*cover.FileReport, len(enforced))}}
	for name, fr := range all.Files {
		if enforced[name] == nil {
			continue // a test module, or the test query itself
		}
		rep.Report.Files[s.src.path(name)] = fr
		rep.CoveredLines += fr.CoveredLines
		rep.NotCoveredLines += fr.NotCoveredLines
	}
	if total := rep.CoveredLines + rep.NotCoveredLines; total > 0 {
		rep.Coverage = 100 * float64(rep.CoveredLines) / float64(total)
	}
	return rep
}

// lineRanges merges OPA's not-covered ranges into runs of consecutive
// lines.
func lineRanges(file string, rs []cover.Range) []LineRange {
	kinds := map[int][]cover.Kind{}
	for _, r := range rs {
		for row := r.Start.Row; row <= r.End.Row; row++ {
			if k, seen := kinds[row]; seen {
				kinds[row] = intersect(k, r.Kinds)
			} else {
				kinds[row] = slices.Clone(r.Kinds)
			}
		}
	}
	var out []LineRange
	for _, row := range slices.Sorted(maps.Keys(kinds)) {
		if n := len(out); n > 0 && out[n-1].End == row-1 {
			out[n-1].End = row
			out[n-1].Kinds = intersect(out[n-1].Kinds, kinds[row])
			continue
		}
		out = append(out, LineRange{File: file, Start: row, End: row, Kinds: kinds[row]})
	}
	return out
}

func intersect(a, b []cover.Kind) []cover.Kind {
	var out []cover.Kind
	for _, k := range a {
		if slices.Contains(b, k) {
			out = append(out, k)
		}
	}
	return out
}
