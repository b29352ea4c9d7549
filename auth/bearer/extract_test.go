package bearer

import (
	"net/http/httptest"
	"testing"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	for _, tt := range []struct {
		name    string
		headers []string // Authorization values; nil: none
		want    string
		wantErr error
	}{
		{"bearer", []string{"Bearer " + jwt}, jwt, nil},
		{"scheme in lower case", []string{"bearer " + jwt}, jwt, nil},
		{"scheme in upper case", []string{"BEARER " + jwt}, jwt, nil},
		{"token68 with padding", []string{"Bearer abc+/=="}, "abc+/==", nil},
		{"no header", nil, "", ErrNoToken},
		{"basic", []string{"Basic YWxpY2U6cGFzcw=="}, "", ErrNoToken},
		{"other scheme without credentials", []string{"Negotiate"}, "", ErrNoToken},
		// Two credentials: which one would a proxy or the CRM read?
		{"two Authorization headers", []string{"Bearer " + jwt, "Bearer other"}, "", ErrMalformed},
		{"bearer and basic", []string{"Basic YWxpY2U6cGFzcw==", "Bearer " + jwt}, "", ErrMalformed},
		// Whitespace that a lenient parser would trim (header smuggling).
		{"leading space", []string{" Bearer " + jwt}, "", ErrMalformed},
		{"trailing space", []string{"Bearer " + jwt + " "}, "", ErrMalformed},
		{"trailing tab", []string{"Bearer " + jwt + "\t"}, "", ErrMalformed},
		{"two spaces", []string{"Bearer  " + jwt}, "", ErrMalformed},
		{"tab after scheme", []string{"Bearer\t" + jwt}, "", ErrMalformed},
		{"newline in token", []string{"Bearer " + jwt[:10] + "\n" + jwt[10:]}, "", ErrMalformed},
		// Two tokens in one header.
		{"comma list", []string{"Bearer " + jwt + ", Bearer other"}, "", ErrMalformed},
		{"space in token", []string{"Bearer " + jwt + " x"}, "", ErrMalformed},
		{"bearer without token", []string{"Bearer"}, "", ErrMalformed},
		{"bearer with space only", []string{"Bearer "}, "", ErrMalformed},
		{"empty header", []string{""}, "", ErrMalformed},
		{"padding only", []string{"Bearer =="}, "", ErrMalformed},
		{"padding inside", []string{"Bearer ab=c"}, "", ErrMalformed},
		{"quoted token", []string{`Bearer "` + jwt + `"`}, "", ErrMalformed},
		{"auth-param syntax", []string{"Bearer token=" + jwt}, "", ErrMalformed},
		{"non-ASCII", []string{"Bearer ëyJ"}, "", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts", nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := Extract(r)
			wantErr(t, "Extract()", err, tt.wantErr)
			if got != tt.want {
				t.Errorf("Extract() = %q, want %q", got, tt.want)
			}
		})
	}
}
