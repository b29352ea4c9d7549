package decisionlog

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePointer(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: "/", want: []string{""}},
		{in: "/input", want: []string{"input"}},
		{in: "/input/subject/email", want: []string{"input", "subject", "email"}},
		{in: "/input/a~1b", want: []string{"input", "a/b"}},
		{in: "/input/m~0n", want: []string{"input", "m~n"}},
		{in: "/input/~01", want: []string{"input", "~1"}},
		{in: "/input/~10", want: []string{"input", "/0"}},
		{in: "/input//x/", want: []string{"input", "", "x", ""}},
		{in: "/input/a%2Fb", want: []string{"input", "a%2Fb"}},
		{in: "/input/0", want: []string{"input", "0"}},
		{in: "input", bad: true},
		{in: "#/input", bad: true},
		{in: "/input/~", bad: true},
		{in: "/input/~2", bad: true},
		{in: "/input/a~", bad: true},
	}
	for _, tt := range tests {
		got, err := parsePointer(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parsePointer(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parsePointer(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestArrayIndex(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"7", 7, true}, {"42", 42, true}, {"999999999", 999999999, true},
		{"", 0, false}, {"-", 0, false}, {"01", 0, false}, {"-1", 0, false}, {"1e2", 0, false},
		{"+1", 0, false}, {"1000000000", 0, false}, {" 1", 0, false},
	}
	for _, tt := range tests {
		got, ok := arrayIndex(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("arrayIndex(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParsePointer checks that a pointer parses exactly when every ~ is
// ~0 or ~1, and that formatting its tokens gives it back.
func FuzzParsePointer(f *testing.F) {
	for _, s := range []string{"", "/", "/input/subject/email", "/input/a~1b/c~0d", "/input/~01", "/input/~", "x", "//~1~0//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tokens, err := parsePointer(p)
		if err != nil {
			if p != "" && p[0] == '/' && strings.Count(p, "~") == strings.Count(p, "~0")+strings.Count(p, "~1") {
				t.Fatalf("parsePointer(%q) = %v for a well-formed pointer", p, err)
			}
			return
		}
		if got := formatPointer(tokens); got != p {
			t.Fatalf("formatPointer(parsePointer(%q)) = %q", p, got)
		}
		again, err := parsePointer(formatPointer(tokens))
		if err != nil || !slices.Equal(again, tokens) {
			t.Fatalf("round trip of %q = %q, %v", tokens, again, err)
		}
	})
}
