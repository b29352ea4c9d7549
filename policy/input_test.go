package policy

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/scope"
)

// Credentials never reach the input, whatever the request carries.
func TestInputHeaders(t *testing.T) {
	b := NewInputBuilder(DefaultHeaders, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "__Host-crmgate=secret")
	r.Header.Set("Authorization", "Bearer secret")
	r.Header.Set("X-Api-Key", "secret")
	r.Header.Set("User-Agent", "ua")
	r.Header.Set("X-Requested-With", "XMLHttpRequest")
	in := b.Build(reqScope("GET", "/", "r", nil), r)
	want := map[string]string{"user-agent": "ua", "x-requested-with": "XMLHttpRequest"}
	if diff := cmp.Diff(in.Request.Headers, want); diff != "" {
		t.Errorf("headers (-got +want):\n%s", diff)
	}

	// A configured list replaces the default; names are case-insensitive.
	in = NewInputBuilder([]string{"X-Tenant"}, nil).Build(reqScope("GET", "/", "r", nil), withHeader(r, "x-tenant", "acme"))
	if diff := cmp.Diff(in.Request.Headers, map[string]string{"x-tenant": "acme"}); diff != "" {
		t.Errorf("configured headers (-got +want):\n%s", diff)
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r = r.Clone(r.Context())
	r.Header.Set(k, v)
	return r
}

func TestInputDefaults(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600))
	b := NewInputBuilder(nil, func() time.Time { return now })
	s := &scope.Scope{ID: "x", Method: "GET", Path: "/", ClientIP: netip.MustParseAddr("::ffff:192.0.2.1")}
	in := b.Build(s, httptest.NewRequest("GET", "/", nil))
	if in.Err() != nil {
		t.Fatal(in.Err())
	}
	if !in.Request.Time.Equal(now) || in.Request.Time.Location() != time.UTC {
		t.Errorf("time = %v, want the clock's %v in UTC", in.Request.Time, now)
	}
	if in.Request.ClientIP != "192.0.2.1" {
		t.Errorf("client_ip = %q, want the IPv4 address unmapped", in.Request.ClientIP)
	}
	if in.Subject.Kind != scope.KindAnonymous || in.Session != nil || in.Route.ID != "" {
		t.Errorf("input without route, subject, session = %+v", in)
	}
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	obj := v.(ast.Object)
	for _, path := range []string{"route.tags", "route.params", "subject.roles", "subject.claims", "request.headers"} {
		ref := ast.MustParseRef("x." + path)[1:]
		got, err := obj.Find(ref)
		if err != nil {
			t.Errorf("%s missing: %v", path, err)
			continue
		}
		switch got.(type) {
		case *ast.Array, ast.Object:
		default:
			t.Errorf("%s = %v, want an empty array or object, never null", path, got)
		}
	}
}

func TestSessionAges(t *testing.T) {
	b := NewInputBuilder(nil, nil)
	s := reqScope("GET", "/", "r", nil)
	// A clock step back must not make a session younger than new.
	s.Session = &scope.Session{Created: testTime.Add(time.Hour)}
	in := b.Build(s, httptest.NewRequest("GET", "/", nil))
	if in.Session.AgeS != 0 || in.Session.IdleS != 0 {
		t.Errorf("session from the future: age %d idle %d, want 0 0", in.Session.AgeS, in.Session.IdleS)
	}
	s.Session = &scope.Session{Created: testTime.Add(-90 * time.Second)}
	in = b.Build(s, httptest.NewRequest("GET", "/", nil))
	if in.Session.AgeS != 90 || in.Session.IdleS != 90 {
		t.Errorf("session never seen before: age %d idle %d, want 90 90", in.Session.AgeS, in.Session.IdleS)
	}
}

func TestClaimsConversion(t *testing.T) {
	b := NewInputBuilder(nil, nil)
	s := reqScope("GET", "/", "r", nil)
	s.Subject = &scope.Subject{Kind: scope.KindUser, ID: "a", Claims: map[string]any{
		"groups": []any{"x", json.Number("2"), true, nil, map[string]any{"k": 1.25}},
		"n":      7,
	}}
	in := b.Build(s, httptest.NewRequest("GET", "/", nil))
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := v.(ast.Object).Find(ast.MustParseRef("x.subject.claims")[1:])
	want := mustValue(t, `{"groups": ["x", 2, true, null, {"k": 1.25}], "n": 7}`)
	if got.Compare(want) != 0 {
		t.Errorf("claims = %v, want %v", got, want)
	}

	for name, claims := range map[string]map[string]any{
		"not json":   {"c": make(chan int)},
		"not finite": {"f": float64Inf()},
		"bad key":    {"\xff": "x"},
		"too deep":   {"d": deep(maxClaimDepth + 2)},
	} {
		s.Subject.Claims = claims
		if in := b.Build(s, httptest.NewRequest("GET", "/", nil)); !errors.Is(in.Err(), ErrInputInvalid) {
			t.Errorf("claims %s: Err() = %v, want ErrInputInvalid", name, in.Err())
		}
	}
}

func float64Inf() float64 {
	var zero float64
	return 1 / zero
}

func deep(n int) any {
	var v any = "leaf"
	for range n {
		v = []any{v}
	}
	return v
}

// FuzzInput checks that any request bytes either build an input whose
// strings are all valid UTF-8, or are refused: the policy never sees a
// string that differs from what is forwarded.
func FuzzInput(f *testing.F) {
	f.Add("/api/contacts", "q=1&q=2", "Mozilla/5.0", "alice")
	f.Add("/a%ffb", "x=%ff", "ua\xff", "bob")
	f.Add("/", "a=1;b=2", "", "")
	f.Add("/caf\u00e9", "%zz", "\x00", "\xc0\x80")
	f.Fuzz(func(t *testing.T, path, query, ua, subject string) {
		b := NewInputBuilder(DefaultHeaders, nil)
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = query
		r.Header["User-Agent"] = []string{ua}
		s := reqScope("GET", "/", "r", nil)
		s.Path = path
		s.Subject = &scope.Subject{Kind: scope.KindUser, ID: subject, Roles: []string{subject}}
		in := b.Build(s, r)
		if in.Err() != nil {
			if !errors.Is(in.Err(), ErrInputInvalid) {
				t.Fatalf("Err() = %v, want ErrInputInvalid", in.Err())
			}
			return
		}
		v, err := in.Value()
		if err != nil {
			t.Fatal(err)
		}
		ast.WalkTerms(v, func(term *ast.Term) bool {
			if s, ok := term.Value.(ast.String); ok && !utf8.ValidString(string(s)) {
				t.Fatalf("input holds a string that is not UTF-8: %q", s)
			}
			return false
		})
		if !strings.Contains(v.String(), `"method": "GET"`) {
			t.Fatalf("input lost its method: %v", v)
		}
	})
}
