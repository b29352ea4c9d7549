package decisionlog

import (
	"bytes"
	"encoding/json"
	"testing"
)

// marshalString is encoding/json's form of s, without HTML escaping.
func marshalString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\n\r\t\x00\x1f\x7f", "<&>", "é€😀", "\xff\xfe", "a\xc0\x80b", "\u2028\u2029", "\xed\xa0\x80"} {
		if got, want := appendString(nil, s), marshalString(s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

// FuzzAppendString checks appendString against encoding/json.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "x\ny", "\xff", "\u2028", `"\`, "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString([]byte("prefix"), s)
		if want := append([]byte("prefix"), marshalString(s)...); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
		if bytes.ContainsAny(got, "\n\r") {
			t.Fatalf("appendString(%q) holds a line break", s)
		}
	})
}

func TestSkipValue(t *testing.T) {
	for _, v := range []string{`"a\"b"`, `{"a":[1,"]}",{"b":"{"}]}`, `[[],[[]]]`, `-1.5e3`, `true`, `null`} {
		doc := v + `,"rest"`
		if got := skipValue([]byte(doc), 0); got != len(v) {
			t.Errorf("skipValue(%s) = %d, want %d", doc, got, len(v))
		}
	}
}
