package auth

import (
	"net/url"
	"strings"
	"testing"
)

// Regression (open redirect): every spelling of another host, scheme or a
// header injection is refused; same-origin paths pass unchanged.
func TestSafeReturn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"/", true},
		{"/contacts", true},
		{"/contacts/42?tab=notes&next=%2Fhome", true},
		{"/files/My%20Doc.pdf", true},
		{"/caf%C3%A9", true},
		{"/search?q=a@b.example", true},
		{"/?next=//evil.example", true},
		{"/page#section", true},
		{"/a/../b", true},

		{"", false},
		{"//evil", false},
		{"///evil", false},
		{`/\evil`, false},
		{`/\/evil`, false},
		{`\\evil`, false},
		{`\/evil`, false},
		{"/x\\y", false},
		{"%2F%2Fevil", false},
		{"%2f%2fevil", false},
		{"/%2F/evil", false},
		{"/%2f%2fevil.example", false},
		{"/%5Cevil", false},
		{"/%5cevil", false},
		{"/%252F%252Fevil", false},
		{"/%255Cevil", false},
		{"/%09/evil", false},
		{"/%0a/evil", false},
		{"/%0D%0ASet-Cookie:x=y", false},
		{"/%00", false},
		{"/%7F", false},
		{"/\t/evil", false},
		{"/\n/evil", false},
		{"/\r\n/evil", false},
		{"/ /evil", false},
		{"/\x7f", false},
		{"https:evil", false},
		{"https://evil.example/", false},
		{"HTTPS://evil.example/", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"user@evil", false},
		{"/user@evil", false},
		{"/%40evil", false},
		{"evil.example", false},
		{".", false},
		{"/%zz", false},
		{"/%", false},
		// Unicode: raw non-ASCII, encoded look-alikes of / and \ that
		// NFKC-normalising backends fold, overlong forms, Unicode spaces
		// and controls.
		{"/／evil", false},
		{"/\u2215evil", false},
		{"/%EF%BC%8Fevil", false},
		{"/%EF%BC%BCevil", false},
		{"/%E2%88%95evil", false},
		{"/%E2%81%84evil", false},
		{"/%C0%AF/evil", false},
		{"/%E0%80%AF", false},
		{"/%E2%80%A8evil", false},
		{"/%E3%80%80evil", false},
		{"/%C2%85evil", false},
		{"/%C2%A0evil", false},
		{"/%EF%BF%BD", false},
		{"/" + strings.Repeat("a", MaxReturnLen), false},
	}
	for _, tt := range tests {
		got, ok := SafeReturn(tt.in)
		want := "/"
		if tt.ok {
			want = tt.in
		}
		if ok != tt.ok || got != want {
			t.Errorf("SafeReturn(%q) = %q, %v, want %q, %v", tt.in, got, ok, want, tt.ok)
		}
	}
}

// FuzzSafeReturn: whatever SafeReturn accepts is returned unchanged and,
// parsed by net/url and resolved against the gateway's origin, stays on
// that origin; it also never holds what browsers strip or reinterpret
// (tab, CR, LF, backslash) or a leading "//".
func FuzzSafeReturn(f *testing.F) {
	for _, s := range []string{"/", "/contacts?x=1", "//evil", `/\evil`, "/%2F%2Fevil", "/\t/evil", "https:evil", "/%E2%80%A8"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://gateway.example/")
	f.Fuzz(func(t *testing.T, raw string) {
		got, ok := SafeReturn(raw)
		if !ok {
			if got != "/" {
				t.Fatalf("SafeReturn(%q) refused but returned %q", raw, got)
			}
			return
		}
		if got != raw {
			t.Fatalf("SafeReturn(%q) = %q, changed", raw, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("SafeReturn accepted %q, which net/url rejects: %v", got, err)
		}
		res := base.ResolveReference(u)
		if res.Scheme != "https" || res.Host != "gateway.example" || res.User != nil {
			t.Fatalf("SafeReturn accepted %q, which resolves to %s", got, res)
		}
		if strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("SafeReturn accepted %q, which a browser may read as another host", got)
		}
	})
}
