package jsonstr

import (
	"encoding/json"
	"testing"
)

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\x00\x1f\b\f\n\r\t", "\u2028\u2029", "\xff\xfe bad", "<&>", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json escapes <, > and & for HTML; Append does not.
		var back string
		got := Append(nil, s)
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("Append(%q) = %s: not JSON: %v", s, got, err)
		}
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("Append(%q) decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
		for _, c := range got {
			if c == '\n' || c == '\r' {
				t.Fatalf("Append(%q) = %q: not one line", s, got)
			}
		}
	})
}
