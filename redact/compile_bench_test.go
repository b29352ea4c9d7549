package redact

import (
	"fmt"
	"testing"
)

// BenchmarkCompile is the cost of compiling a decision's rules on the
// request path: the shipped sales view with its owner filter, and the
// largest decision the policy schema allows, 256 descendant rules and
// 256 filters.
func BenchmarkCompile(b *testing.B) {
	filters := []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}
	var manyRules []Rule
	var manyFilters []Filter
	for i := range 256 {
		manyRules = append(manyRules, Rule{Path: fmt.Sprintf("$..field%d", i), Action: ActionRemove})
		manyFilters = append(manyFilters, Filter{Path: fmt.Sprintf("$.list%d", i), KeepWhere: map[string]any{"owner": "alice"}})
	}
	for _, c := range []struct {
		name    string
		rules   []Rule
		filters []Filter
	}{
		{"sales-view", shippedRules, filters},
		{"256-rules-256-filters", manyRules, manyFilters},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			defer cpuMetrics(b, 0)()
			for b.Loop() {
				if _, err := Compile(c.rules, c.filters, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
