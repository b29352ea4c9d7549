package apikey

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in         string
		kind, name string
		ok         bool
	}{
		{"header:X-API-Key", SourceHeader, "X-API-Key", true},
		{"header:x_api_key", SourceHeader, "x_api_key", true},
		{"authorization:ApiKey", SourceAuthorization, "ApiKey", true},
		{"authorization:Bearer", SourceAuthorization, "Bearer", true},
		{"basic", SourceBasic, "Basic", true},
		{"", "", "", false},
		{"header", "", "", false},
		{"header:", "", "", false},
		{"header:X API Key", "", "", false},
		{"header:X-API-Key:", "", "", false},
		{"header:Authorization", "", "", false},
		{"header:cookie", "", "", false},
		{"header:Proxy_Authorization", "", "", false},
		{"authorization:", "", "", false},
		{"authorization:Api Key", "", "", false},
		{"authorization:basic", "", "", false},
		{"basic:x", "", "", false},
		{"Basic", "", "", false},
		{"query:api_key", "", "", false},
	} {
		s, err := ParseSource(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSource(%q) = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if s.Kind() != tc.kind || s.Name() != tc.name || s.String() != tc.in {
			t.Errorf("ParseSource(%q) = %s %s %q", tc.in, s.Kind(), s.Name(), s.String())
		}
		var u Source
		if err := u.UnmarshalText([]byte(tc.in)); err != nil || !u.same(s) {
			t.Errorf("UnmarshalText(%q) = %v, %v", tc.in, u, err)
		}
	}
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestExtract(t *testing.T) {
	k1, k2 := unknownKey(t), unknownKey(t)
	all := []Source{MustParseSource("header:X-API-Key"), MustParseSource("authorization:ApiKey"), MustParseSource("basic")}
	header, authz, basic := all[0], all[1], all[2]
	for _, tc := range []struct {
		name    string
		headers [][2]string
		sources []Source
		want    string
		from    Source
		err     error
	}{
		{"header", [][2]string{{"X-API-Key", k1}}, all, k1, header, nil},
		{"header in lower case", [][2]string{{"x-api-key", k1}}, all, k1, header, nil},
		{"header with underscores", [][2]string{{"X_API_KEY", k1}}, all, k1, header, nil},
		{"authorization", [][2]string{{"Authorization", "ApiKey " + k1}}, all, k1, authz, nil},
		{"authorization scheme in lower case", [][2]string{{"Authorization", "apikey " + k1}}, all, k1, authz, nil},
		{"basic password", [][2]string{{"Authorization", basicAuth("export-job", k1)}}, all, k1, basic, nil},
		{"basic password, empty user", [][2]string{{"Authorization", basicAuth("", k1)}}, all, k1, basic, nil},
		{"basic user, empty password", [][2]string{{"Authorization", basicAuth(k1, "")}}, all, k1, basic, nil},
		{"basic same key twice", [][2]string{{"Authorization", basicAuth(k1, k1)}}, all, k1, basic, nil},
		{"basic scheme in upper case", [][2]string{{"Authorization", "BASIC " + base64.StdEncoding.EncodeToString([]byte(":"+k1))}}, all, k1, basic, nil},
		{"nothing", nil, all, "", Source{}, ErrNoCredential},
		{"no sources", [][2]string{{"X-API-Key", k1}}, nil, "", Source{}, ErrNoCredential},
		{"other header", [][2]string{{"X-API-Token", k1}}, all, "", Source{}, ErrNoCredential},
		{"bearer is the JWT stage's", [][2]string{{"Authorization", "Bearer eyJhbGciOi.x.y"}}, all, "", Source{}, ErrNoCredential},
		{"source not configured", [][2]string{{"Authorization", basicAuth("u", k1)}}, all[:2], "", Source{}, ErrNoCredential},
		// Extract never trims: Parse refuses what it returns.
		{"trailing space kept", [][2]string{{"X-API-Key", k1 + " "}}, all, k1 + " ", header, nil},
		{"basic trailing newline kept", [][2]string{{"Authorization", basicAuth("", k1+"\n")}}, all, k1 + "\n", basic, nil},
		// Attack: the header twice, so that a proxy and the gateway may
		// each pick a different one.
		{"header twice", [][2]string{{"X-API-Key", k1}, {"X-API-Key", k2}}, all, "", header, ErrAmbiguous},
		{"header twice, same value", [][2]string{{"X-API-Key", k1}, {"X-API-Key", k1}}, all, "", header, ErrAmbiguous},
		// Attack: X_API_Key beside X-API-Key; a CGI-style upstream would
		// see the two as one variable.
		{"underscore spelling beside the header", [][2]string{{"X-API-Key", k1}, {"X_API_Key", k2}}, all, "", header, ErrAmbiguous},
		{"two case spellings", [][2]string{{"X-API-Key", k1}, {"x-api-key", k2}}, all, "", header, ErrAmbiguous},
		{"authorization twice", [][2]string{{"Authorization", "ApiKey " + k1}, {"Authorization", "ApiKey " + k2}}, all, "", authz, ErrAmbiguous},
		{"authorization twice, other scheme", [][2]string{{"Authorization", "ApiKey " + k1}, {"Authorization", "Bearer x"}}, all, "", authz, ErrAmbiguous},
		{"authorization twice, two spellings", [][2]string{{"Authorization", "ApiKey " + k1}, {"authorization", "Bearer x"}}, all, "", authz, ErrAmbiguous},
		{"two bearer tokens are not ours", [][2]string{{"Authorization", "Bearer x"}, {"Authorization", "Bearer y"}}, all, "", Source{}, ErrNoCredential},
		{"two sources", [][2]string{{"X-API-Key", k1}, {"Authorization", "ApiKey " + k2}}, all, "", Source{}, ErrAmbiguous},
		{"two sources, same key", [][2]string{{"X-API-Key", k1}, {"Authorization", "ApiKey " + k1}}, all, "", Source{}, ErrAmbiguous},
		// Attack: Basic naming two keys, one as user and one as password.
		{"basic user and password two keys", [][2]string{{"Authorization", basicAuth(k1, k2)}}, all, "", basic, ErrAmbiguous},
		{"empty header", [][2]string{{"X-API-Key", ""}}, all, "", header, ErrMalformed},
		// Attack: a huge header value is refused before any work.
		{"1 MB header", [][2]string{{"X-API-Key", strings.Repeat("a", 1<<20)}}, all, "", header, ErrMalformed},
		{"1 MB authorization", [][2]string{{"Authorization", "ApiKey " + strings.Repeat("a", 1<<20)}}, all, "", authz, ErrMalformed},
		{"1 MB basic", [][2]string{{"Authorization", "Basic " + strings.Repeat("A", 1<<20)}}, all, "", basic, ErrMalformed},
		{"scheme without key", [][2]string{{"Authorization", "ApiKey"}}, all, "", authz, ErrMalformed},
		{"scheme and a space", [][2]string{{"Authorization", "ApiKey "}}, all, "", authz, ErrMalformed},
		{"two spaces", [][2]string{{"Authorization", "ApiKey  " + k1}}, all, "", authz, ErrMalformed},
		{"tab", [][2]string{{"Authorization", "ApiKey\t" + k1}}, all, "", authz, ErrMalformed},
		{"basic not base64", [][2]string{{"Authorization", "Basic %%%"}}, all, "", basic, ErrMalformed},
		{"basic unpadded", [][2]string{{"Authorization", "Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(":"+k1)), "=")}}, all, "", basic, ErrMalformed},
		{"basic no colon", [][2]string{{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(k1))}}, all, "", basic, ErrMalformed},
		{"basic empty", [][2]string{{"Authorization", basicAuth("", "")}}, all, "", basic, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts", nil)
			r.Header = http.Header{}
			for _, h := range tc.headers {
				// Raw map writes: Extract must cope with any spelling the
				// server let through.
				r.Header[h[0]] = append(r.Header[h[0]], h[1])
			}
			got, from, err := Extract(r, tc.sources)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Extract = %.40q, %v, want %v", got, err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Extract = %.40q, want %.40q", got, tc.want)
			}
			if !from.same(tc.from) {
				t.Errorf("Extract source = %v, want %v", from, tc.from)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	h := http.Header{
		"X-Api-Key":     {"a"},
		"X_api_key":     {"b"},
		"x-api-key":     {"c"},
		"X-Api-Keys":    {"keep"},
		"Authorization": {"ApiKey k", "Bearer jwt", "apikey k2", "Basic dTpw"},
		"Accept":        {"application/json"},
	}
	MustParseSource("header:X-API-Key").Strip(h)
	MustParseSource("authorization:ApiKey").Strip(h)
	want := http.Header{
		"X-Api-Keys":    {"keep"},
		"Authorization": {"Bearer jwt", "Basic dTpw"},
		"Accept":        {"application/json"},
	}
	if d := cmp.Diff(h, want); d != "" {
		t.Errorf("after Strip (-got +want):\n%s", d)
	}
	MustParseSource("basic").Strip(h)
	MustParseSource("authorization:Bearer").Strip(h)
	if _, ok := h["Authorization"]; ok {
		t.Errorf("Authorization left after stripping every scheme: %v", h)
	}
}
