package redact

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The views of the shipped policy (policies/data.yaml).
var (
	viewSales   = []Rule{{Path: "$..ssn", Action: "remove"}, {Path: "$..credit_card", Action: "mask", KeepLast: 4}}
	viewFinance = []Rule{{Path: "$..ssn", Action: "remove"}}
	viewSupport = []Rule{
		{Path: "$..ssn", Action: "remove"},
		{Path: "$..credit_card", Action: "mask", KeepLast: 4},
		{Path: "$..email", Action: "mask"},
		{Path: "$..phone", Action: "mask", KeepLast: 4},
	}
)

// TestGolden pins the output of the shipped views on sample CRM bodies;
// a refusal is pinned as its error text. go test -run Golden -update
// rewrites the files.
func TestGolden(t *testing.T) {
	own := func(path, who string) []Filter {
		return []Filter{{Path: path, KeepWhere: map[string]any{"owner": who}}}
	}
	tests := []struct {
		name, in string
		rules    []Rule
		filters  []Filter
	}{
		{"contacts.sales.alice", "contacts.json", viewSales, own("$.items", "alice")},
		{"contacts.sales.dave", "contacts.json", viewSales, own("$.items", "dave")},
		{"contacts.finance", "contacts.json", viewFinance, nil},
		{"contacts.support", "contacts.json", viewSupport, nil},
		{"contacts.pseudonymised", "contacts.json", []Rule{{Path: "$..email", Action: "hash"}, {Path: "$..ssn", Action: "null"}, {Path: "$.items[*].notes", Action: "remove"}}, nil},
		{"contact.sales.alice", "contact.json", viewSales, own("$", "alice")},
		{"contact.sales.bob", "contact.json", viewSales, own("$", "bob")},
		{"contact.sales.wrong-target", "contact.json", viewSales, own("$.items", "alice")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "golden", tt.in))
			if err != nil {
				t.Fatal(err)
			}
			p := mustCompile(t, tt.rules, tt.filters)
			got, _, err := transformAll(t, p, string(in))
			if err != nil {
				got = "error: " + err.Error()
			}
			got += "\n"
			file := filepath.Join("testdata", "golden", tt.name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal([]byte(got), want) {
				t.Errorf("Transform(%s) =\n%s\nwant\n%s", tt.in, got, want)
			}
		})
	}
}
