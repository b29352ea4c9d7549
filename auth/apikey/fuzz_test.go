package apikey

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and accepts exactly the strings that are
// a prefix, an id, a secret and their checksum, rebuilt byte for byte.
func FuzzParse(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParse.
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || id != "" || secret != "" {
				t.Fatalf("Parse(%q) = %q, %q, %v", s, id, secret, err)
			}
			if len(s) > MaxLen && !errors.Is(err, ErrTooLong) {
				t.Fatalf("Parse(%d bytes) = %v, want ErrTooLong", len(s), err)
			}
			return
		}
		if !ValidID(id) || len(secret) != SecretLen {
			t.Fatalf("Parse(%q) accepted id %q, secret %q", s, id, secret)
		}
		if rebuilt := (Key{id: id, secret: secret}).Plaintext(); rebuilt != s {
			t.Fatalf("Parse(%q) accepted a key that rebuilds as %q", s, rebuilt)
		}
	})
}

// FuzzExtract: Extract never panics on any header names and values, what it
// returns appears verbatim in the request or its Basic credential, and
// after Strip of every source nothing is left to extract.
func FuzzExtract(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzExtract.
	sources := []Source{MustParseSource("header:X-API-Key"), MustParseSource("authorization:ApiKey"), MustParseSource("basic")}
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string) {
		r := httptest.NewRequest("GET", "https://crm.example.com/", nil)
		r.Header = http.Header{}
		r.Header[name1] = append(r.Header[name1], value1)
		r.Header[name2] = append(r.Header[name2], value2)
		key, src, err := Extract(r, sources)
		if err != nil {
			if key != "" {
				t.Fatalf("Extract failed (%v) but returned %q", err, key)
			}
			if !errors.Is(err, ErrNoCredential) && !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Extract = %v, not one of the documented errors", err)
			}
		} else {
			if key == "" || len(key) > 2*MaxLen+1 {
				t.Fatalf("Extract = %q from %v", key, src)
			}
			switch src.Kind() {
			case SourceHeader, SourceAuthorization:
				if !strings.Contains(value1, key) && !strings.Contains(value2, key) {
					t.Fatalf("Extract = %q, which the request does not hold verbatim", key)
				}
			case SourceBasic:
			default:
				t.Fatalf("Extract source %v is not configured", src)
			}
		}
		for _, s := range sources {
			s.Strip(r.Header)
		}
		if _, _, err := Extract(r, sources); !errors.Is(err, ErrNoCredential) {
			t.Fatalf("after Strip: Extract = %v, want ErrNoCredential; headers %q", err, r.Header)
		}
	})
}
