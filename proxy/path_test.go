package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTargetAccepts(t *testing.T) {
	tests := []struct {
		name, raw          string
		path, escaped, qry string
		segs               []string
		nonASCII           bool
	}{
		{name: "root", raw: "/", path: "/", escaped: "/", segs: []string{""}},
		{name: "plain", raw: "/api/contacts/42", path: "/api/contacts/42", escaped: "/api/contacts/42", segs: []string{"api", "contacts", "42"}},
		{name: "trailing slash", raw: "/api/contacts/", path: "/api/contacts/", escaped: "/api/contacts/", segs: []string{"api", "contacts", ""}},
		{name: "query kept raw", raw: "/api/contacts?q=a%20b&page=2", path: "/api/contacts", escaped: "/api/contacts", qry: "q=a%20b&page=2", segs: []string{"api", "contacts"}},
		{name: "unreserved escapes decoded", raw: "/api/%63ontacts/%7Ex", path: "/api/contacts/~x", escaped: "/api/contacts/~x", segs: []string{"api", "contacts", "~x"}},
		{name: "reserved escapes upper-cased", raw: "/api/contacts/a%2bb%20c", path: "/api/contacts/a+b c", escaped: "/api/contacts/a%2Bb%20c", segs: []string{"api", "contacts", "a+b c"}},
		{name: "utf-8", raw: "/api/contacts/%C3%A9", path: "/api/contacts/é", escaped: "/api/contacts/%C3%A9", segs: []string{"api", "contacts", "é"}, nonASCII: true},
		{name: "sub-delims", raw: "/a/b:c@d!$&'()*+,=", path: "/a/b:c@d!$&'()*+,=", escaped: "/a/b:c@d!$&'()*+,=", segs: []string{"a", "b:c@d!$&'()*+,="}},
		{name: "dots inside segment", raw: "/a/..b/c..", path: "/a/..b/c..", escaped: "/a/..b/c..", segs: []string{"a", "..b", "c.."}},
		{name: "empty query", raw: "/a?", path: "/a", escaped: "/a", segs: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTarget(tt.raw)
			if err != nil {
				t.Fatalf("parseTarget(%q) error %v", tt.raw, err)
			}
			want := target{path: tt.path, escaped: tt.escaped, segs: tt.segs, rawQuery: tt.qry, nonASCII: tt.nonASCII}
			if d := cmp.Diff(got, want, cmp.AllowUnexported(target{})); d != "" {
				t.Errorf("parseTarget(%q) (-got +want):\n%s", tt.raw, d)
			}
		})
	}
}

// Each case is a path-confusion payload: the attacker hopes the gateway and
// the backend read the path differently (CVE classes: encoded traversal,
// Tomcat ;jsessionid bypass, IIS backslash, double decoding, NUL truncation).
func TestParseTargetRejects(t *testing.T) {
	tests := []struct {
		name, raw string
		want      error
	}{
		{"absolute form", "http://evil/api", ErrTargetForm},
		{"asterisk form", "*", ErrTargetForm},
		{"empty", "", ErrTargetForm},
		{"encoded slash", "/api/contacts%2f1", ErrEncodedSlash},
		{"encoded slash upper", "/api/contacts%2F1", ErrEncodedSlash},
		{"encoded backslash", "/api%5cadmin", ErrEncodedSlash},
		{"raw backslash", "/api\\admin", ErrBackslash},
		{"dot-dot", "/api/../admin", ErrDotSegment},
		{"dot", "/api/./contacts", ErrDotSegment},
		{"trailing dot-dot", "/api/..", ErrDotSegment},
		{"encoded dot-dot", "/api/%2e%2e/admin", ErrDotSegment},
		{"mixed dot-dot", "/api/.%2E/admin", ErrDotSegment},
		{"encoded dot", "/api/%2e/admin", ErrDotSegment},
		{"double encoding", "/api/%252e%252e/admin", ErrDoubleEncoding},
		{"double encoded slash", "/api%252fadmin", ErrDoubleEncoding},
		{"path parameter", "/api/contacts;jsessionid=x", ErrPathParam},
		{"encoded semicolon", "/api/contacts%3bx", ErrPathParam},
		{"dot-dot with parameter", "/api/..;/admin", ErrPathParam},
		{"encoded hash", "/api/contacts%23x", ErrFragment},
		{"raw hash", "/api/contacts#x", ErrFragment},
		{"encoded question mark", "/api/contacts%3fx", ErrEncodedReserved},
		{"NUL", "/api/contacts%00.json", ErrControl},
		{"raw control", "/api/con\ttacts", ErrControl},
		{"encoded CR", "/api/x%0d%0aSet-Cookie:a", ErrControl},
		{"DEL", "/api/x%7f", ErrControl},
		{"bad escape", "/api/%zz", ErrBadEscape},
		{"truncated escape", "/api/%4", ErrBadEscape},
		{"truncated escape end", "/api/%", ErrBadEscape},
		{"overlong utf-8 dot", "/api/%c0%ae%c0%ae/admin", ErrInvalidUTF8},
		{"invalid utf-8", "/api/%ff", ErrInvalidUTF8},
		{"raw non-ascii", "/api/\xc3\xa9", ErrInvalidUTF8},
		{"empty segment", "/api//admin", ErrEmptySegment},
		{"leading double slash", "//evil.example/api", ErrEmptySegment},
		{"quote", "/api/\"x", ErrBadPathChar},
		{"angle", "/api/<x>", ErrBadPathChar},
		{"space", "/api/a b", ErrBadPathChar},
		{"query control", "/api?q=%00", ErrControl},
		{"query semicolon", "/api?a=1;b=2", ErrQuery},
		{"query hash", "/api?a=1#x", ErrFragment},
		{"query bad utf-8", "/api?a=%ff", ErrInvalidUTF8},
		{"query bad escape", "/api?a=%g0", ErrBadEscape},
		{"query raw non-ascii", "/api?a=\xc3\xa9", ErrInvalidUTF8},
		{"query space", "/api?a=b c", ErrQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTarget(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Errorf("parseTarget(%q) = %v, want %v", tt.raw, err, tt.want)
			}
		})
	}
}

func TestCheckQueryUTF8(t *testing.T) {
	for _, q := range []string{"a=%C3%A9", "a=%E2%82%AC&b=%F0%9F%98%80", "a=%41"} {
		if err := checkQuery(q); err != nil {
			t.Errorf("checkQuery(%q) = %v, want nil", q, err)
		}
	}
	for _, q := range []string{"a=%C3", "a=%C3x", "a=%80", "a=%E2%82"} {
		if err := checkQuery(q); err == nil {
			t.Errorf("checkQuery(%q) = nil, want error", q)
		}
	}
}

// FuzzParseTarget checks the invariants routing relies on for any input:
// an accepted target decodes to valid UTF-8 without control characters,
// dot segments or encoded separators, and its escaped form parses back to
// the same path (one canonical form).
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/api/contacts/42?x=1", "/a/%2e%2e/b", "/a%2fb", "/a/%C3%A9", "/a;b", "/a/..%2f", "/%25", "/a?%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseTarget(raw)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got.path, "/") {
			t.Fatalf("path %q does not start with /", got.path)
		}
		for _, s := range got.segs {
			if s == "." || s == ".." || strings.ContainsAny(s, "/\\%;#\x00") {
				t.Fatalf("segment %q of %q is unsafe", s, raw)
			}
		}
		for _, r := range got.path {
			if r < 0x20 || r == 0x7f || r == 0xfffd {
				t.Fatalf("path %q has control or replacement character", got.path)
			}
		}
		again, err := parseTarget(got.escaped)
		if err != nil {
			t.Fatalf("escaped form %q of %q is rejected: %v", got.escaped, raw, err)
		}
		if again.path != got.path || again.escaped != got.escaped {
			t.Fatalf("not canonical: %q -> %q/%q -> %q/%q", raw, got.path, got.escaped, again.path, again.escaped)
		}
	})
}
