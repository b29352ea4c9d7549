package proxy

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newTestMatcher(t *testing.T) *RouteMatcher {
	t.Helper()
	c := Config{Upstreams: map[string]UpstreamConfig{"crm": {URL: "http://127.0.0.1:1"}}, Routes: []RouteConfig{
		{ID: "contacts.item", Path: "/api/contacts/{id}", Methods: []string{"GET", "PUT", "DELETE"}, Upstream: "crm", Tags: []string{"pii"}},
		{ID: "admin.users", Path: "/api/admin/users", Upstream: "crm", Policy: "data.crmgate.admin.decision", Auth: AuthOptional,
			Credentials: []string{CredSession}, AllowCIDRs: []string{"10.0.0.0/8"}},
		{ID: "files", Path: "/files/{rest...}", Upstream: "crm", Auth: AuthNone},
		{ID: "legacy", Path: "/api/legacy/{id}", Methods: []string{"POST", "DELETE"}, Upstream: "crm", MethodOverride: true},
		{ID: "tenant", Host: "*.example.org", Path: "/t", Upstream: "crm"},
	}}
	c.Defaults()
	m, err := NewRouteMatcher(c)
	if err != nil {
		t.Fatalf("NewRouteMatcher: %v", err)
	}
	return m
}

func TestRouteMatcherMatch(t *testing.T) {
	m := newTestMatcher(t)
	tests := []struct {
		name, method, target, host string
		id                         string // the matched route
		header                     http.Header
		want                       *RouteMatch // Route.ID, Params, Method, Path, Auth, Credentials, Policy compared
		wantStatus                 int         // an *HTTPError's status
		wantErr                    error       // errors.Is
	}{
		{name: "param", id: "contacts.item", method: "GET", target: "/api/contacts/42?x=1", host: "crm.example.com",
			want: &RouteMatch{Params: map[string]string{"id": "42"}, Method: "GET", Path: "/api/contacts/42", Auth: AuthRequired}},
		{name: "unreserved escapes are decoded as routing sees them", id: "contacts.item", method: "GET", target: "/api/contacts/%34%32", host: "crm",
			want: &RouteMatch{Params: map[string]string{"id": "42"}, Method: "GET", Path: "/api/contacts/42", Auth: AuthRequired}},
		{name: "the route's policy, auth and credentials", id: "admin.users", method: "GET", target: "/api/admin/users", host: "crm",
			want: &RouteMatch{Method: "GET", Path: "/api/admin/users", Auth: AuthOptional, Credentials: []string{CredSession}}},
		{name: "tail parameter", id: "files", method: "GET", target: "/files/a/b", host: "crm",
			want: &RouteMatch{Params: map[string]string{"rest": "a/b"}, Method: "GET", Path: "/files/a/b", Auth: AuthNone}},
		{name: "method override", id: "legacy", method: "POST", target: "/api/legacy/7", host: "crm", header: http.Header{"X-Http-Method-Override": {"delete"}},
			want: &RouteMatch{Params: map[string]string{"id": "7"}, Method: "DELETE", Path: "/api/legacy/7", Auth: AuthRequired}},
		{name: "wildcard host", id: "tenant", method: "GET", target: "/t", host: "a.example.org:8443",
			want: &RouteMatch{Method: "GET", Path: "/t", Auth: AuthRequired}},
		{name: "host decides", method: "GET", target: "/t", host: "example.org", wantStatus: http.StatusNotFound},
		{name: "no route", method: "GET", target: "/api/nothing", host: "crm", wantStatus: http.StatusNotFound},
		{name: "method not allowed", method: "POST", target: "/api/contacts/42", host: "crm", wantStatus: http.StatusMethodNotAllowed},
		{name: "unknown method", method: "TRACE", target: "/api/contacts/42", host: "crm", wantStatus: http.StatusMethodNotAllowed},
		// Path traversal hidden in percent-encoding is refused, never resolved to /api/admin.
		{name: "encoded dot segments", method: "GET", target: "/api/contacts/%2e%2e/admin/users", host: "crm", wantErr: ErrDotSegment},
		{name: "encoded dot segments, upper case", method: "GET", target: "/api/%2E%2E/admin", host: "crm", wantErr: ErrDotSegment},
		{name: "encoded slash", method: "GET", target: "/api/contacts/1%2F..%2Fadmin", host: "crm", wantErr: ErrEncodedSlash},
		{name: "double encoding", method: "GET", target: "/api/contacts/%252e", host: "crm", wantErr: ErrDoubleEncoding},
		{name: "path parameter", method: "GET", target: "/api/contacts/1;x", host: "crm", wantErr: ErrPathParam},
		{name: "semicolon in the query", method: "GET", target: "/api/contacts/1?a=1;b=2", host: "crm", wantErr: ErrQuery},
		{name: "bad host", method: "GET", target: "/api/contacts/1", host: "crm..example", wantErr: ErrHost},
		{name: "repeated credential header", method: "GET", target: "/api/contacts/1", host: "crm",
			header: http.Header{"Authorization": {"a", "b"}}, wantErr: ErrDuplicateHeader},
		{name: "the gateway's own endpoint", method: "GET", target: "/.crmgate/jwks.json", host: "crm", wantErr: ErrGatewayEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{Method: tt.method, RequestURI: tt.target, Host: tt.host, Header: tt.header}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			got, err := m.Match(r)
			if tt.want == nil {
				var herr *HTTPError
				switch {
				case err == nil:
					t.Fatalf("Match(%s %s) = route %s, want an error", tt.method, tt.target, got.Route.ID)
				case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
					t.Errorf("Match(%s %s) = %v, want %v", tt.method, tt.target, err, tt.wantErr)
				case tt.wantStatus != 0 && (!errors.As(err, &herr) || herr.Status != tt.wantStatus):
					t.Errorf("Match(%s %s) = %v, want status %d", tt.method, tt.target, err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("Match(%s %s) = %v, want a route", tt.method, tt.target, err)
			}
			if got.Route.ID != tt.id {
				t.Errorf("Match(%s %s) = route %s, want %s", tt.method, tt.target, got.Route.ID, tt.id)
			}
			got.rt, got.Route, got.EscapedPath = nil, nil, ""
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(RouteMatch{})); diff != "" {
				t.Errorf("Match(%s %s) (-got +want):\n%s", tt.method, tt.target, diff)
			}
		})
	}
}

func TestRouteMatcherRouteAndClients(t *testing.T) {
	m := newTestMatcher(t)
	got, err := m.Match(&http.Request{Method: "GET", RequestURI: "/api/admin/users", Host: "crm", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Route.ID != "admin.users" || got.Route.Policy != "data.crmgate.admin.decision" {
		t.Errorf("Route = %+v, want admin.users deciding with data.crmgate.admin.decision", got.Route)
	}
	if !got.RestrictsClients() {
		t.Error("RestrictsClients() = false for a route with allow_cidrs")
	}
	for ip, want := range map[string]int{"10.1.2.3": 0, "::ffff:10.1.2.3": 0, "192.0.2.1": http.StatusForbidden} {
		err := got.CheckClient(netip.MustParseAddr(ip))
		var herr *HTTPError
		switch {
		case want == 0 && err != nil:
			t.Errorf("CheckClient(%s) = %v, want nil", ip, err)
		case want != 0 && (!errors.As(err, &herr) || herr.Status != want):
			t.Errorf("CheckClient(%s) = %v, want %d", ip, err, want)
		}
	}
	item, err := m.Match(&http.Request{Method: "GET", RequestURI: "/api/contacts/1", Host: "crm", Header: http.Header{}})
	if err != nil {
		t.Fatal(err)
	}
	if item.RestrictsClients() || item.CheckClient(netip.Addr{}) != nil {
		t.Error("a route without address lists restricts clients")
	}
	if diff := cmp.Diff(item.Route.Tags, []string{"pii"}); diff != "" {
		t.Errorf("Tags (-got +want):\n%s", diff)
	}
}

func TestParseRequestTarget(t *testing.T) {
	got, err := ParseRequestTarget("/api/caf%C3%A9/%7e?q=a%20b")
	if err != nil {
		t.Fatal(err)
	}
	want := RequestTarget{Path: "/api/café/~", EscapedPath: "/api/caf%C3%A9/~", RawQuery: "q=a%20b"}
	if got != want {
		t.Errorf("ParseRequestTarget = %+v, want %+v", got, want)
	}
	// Traversal hidden in percent-encoding is refused, as the gateway refuses it.
	if _, err := ParseRequestTarget("/api/%2e%2e/admin"); !errors.Is(err, ErrDotSegment) {
		t.Errorf("ParseRequestTarget(/api/%%2e%%2e/admin) = %v, want ErrDotSegment", err)
	}
	if _, err := ParseRequestTarget("http://evil/api"); !errors.Is(err, ErrTargetForm) {
		t.Errorf("ParseRequestTarget(absolute form) = %v, want ErrTargetForm", err)
	}
}
