package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustRouter(t *testing.T, routes []RouteConfig) *router {
	t.Helper()
	c := Config{Upstreams: map[string]UpstreamConfig{"crm": {URL: "http://127.0.0.1:1"}}, Routes: routes}
	c.Defaults()
	rt, err := compileRoutes(c.Routes)
	if err != nil {
		t.Fatalf("compileRoutes: %v", err)
	}
	return rt
}

func segsOf(p string) []string { return strings.Split(p[1:], "/") }

func TestRouterMatch(t *testing.T) {
	rt := mustRouter(t, []RouteConfig{
		{ID: "home", Path: "/", Upstream: "crm"},
		{ID: "list", Path: "/api/contacts", Methods: []string{"GET", "POST"}, Upstream: "crm"},
		{ID: "item", Path: "/api/contacts/{id}", Methods: []string{"GET", "DELETE"}, Upstream: "crm"},
		{ID: "me", Path: "/api/contacts/me", Upstream: "crm"},
		{ID: "files", Path: "/files/{rest...}", Upstream: "crm"},
		{ID: "host", Host: "admin.example.com", Path: "/api/contacts", Upstream: "crm"},
		{ID: "wild", Host: "*.example.org", Path: "/x", Upstream: "crm"},
		{ID: "ci", Path: "/Legacy/Page", Upstream: "crm", CaseInsensitive: true},
	})
	tests := []struct {
		name, host, path, method string
		wantID                   string
		wantParams               map[string]string
		wantAllowed              []string
	}{
		{name: "root", host: "crm", path: "/", method: "GET", wantID: "home"},
		{name: "literal", host: "crm", path: "/api/contacts", method: "POST", wantID: "list"},
		{name: "param", host: "crm", path: "/api/contacts/42", method: "DELETE", wantID: "item", wantParams: map[string]string{"id": "42"}},
		{name: "literal beats param", host: "crm", path: "/api/contacts/me", method: "GET", wantID: "me"},
		{name: "param is one segment", host: "crm", path: "/api/contacts/42/notes", method: "GET"},
		{name: "param not empty", host: "crm", path: "/api/contacts/", method: "GET"},
		{name: "tail", host: "crm", path: "/files/a/b/c.txt", method: "GET", wantID: "files", wantParams: map[string]string{"rest": "a/b/c.txt"}},
		{name: "tail needs a segment", host: "crm", path: "/files/", method: "GET"},
		{name: "tail not the prefix itself", host: "crm", path: "/files", method: "GET"},
		{name: "method not allowed", host: "crm", path: "/api/contacts/42", method: "PUT", wantAllowed: []string{"GET", "DELETE"}},
		{name: "exact host first", host: "admin.example.com", path: "/api/contacts", method: "GET", wantID: "host"},
		{name: "wildcard host", host: "a.example.org", path: "/x", method: "GET", wantID: "wild"},
		{name: "wildcard needs a label", host: "example.org", path: "/x", method: "GET"},
		{name: "case-sensitive by default", host: "crm", path: "/API/contacts", method: "GET"},
		{name: "case-insensitive route", host: "crm", path: "/legacy/PAGE", method: "GET", wantID: "ci"},
		{name: "no route", host: "crm", path: "/nothing", method: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, params, allowed := rt.match(tt.host, segsOf(tt.path), tt.method)
			gotID := ""
			if r != nil {
				gotID = r.cfg.ID
			}
			if gotID != tt.wantID {
				t.Fatalf("match(%q %q %q) = route %q, want %q", tt.host, tt.method, tt.path, gotID, tt.wantID)
			}
			if d := cmp.Diff(params, tt.wantParams); d != "" {
				t.Errorf("params (-got +want):\n%s", d)
			}
			slices.Sort(allowed)
			slices.Sort(tt.wantAllowed)
			if d := cmp.Diff(allowed, tt.wantAllowed); d != "" {
				t.Errorf("allowed (-got +want):\n%s", d)
			}
		})
	}
}

func TestParsePatternRejects(t *testing.T) {
	for _, p := range []string{"api", "/a//b", "/a/../b", "/a/{id", "/a/x{id}", "/{rest...}/x", "/{a}/{a}", "/a/%2f", "/a;b", "/{a-b}"} {
		if _, err := parsePattern(p); err == nil {
			t.Errorf("parsePattern(%q) = nil error, want error", p)
		}
	}
}

func TestCompileRoutesConflicts(t *testing.T) {
	_, err := compileRoutes([]RouteConfig{
		{ID: "a", Path: "/api/{id}", Methods: []string{"GET"}, Upstream: "crm"},
		{ID: "b", Path: "/api/{other}", Methods: []string{"GET", "POST"}, Upstream: "crm"},
	})
	if err == nil || !strings.Contains(err.Error(), "matches the same requests as routes[0]") {
		t.Errorf("compileRoutes(conflicting) = %v, want a conflict error", err)
	}
	if _, err := compileRoutes([]RouteConfig{
		{ID: "a", Path: "/api/{id}", Methods: []string{"GET"}, Upstream: "crm"},
		{ID: "b", Path: "/api/{id}", Methods: []string{"POST"}, Upstream: "crm"},
	}); err != nil {
		t.Errorf("compileRoutes(disjoint methods) = %v, want nil", err)
	}
}

func BenchmarkRouterMatch(b *testing.B) {
	var routes []RouteConfig
	for _, p := range []string{"/", "/api/contacts", "/api/contacts/{id}", "/api/deals", "/api/deals/{id}", "/api/invoices", "/api/invoices/{id}", "/api/export/contacts", "/api/admin/users", "/api/whoami", "/static/{rest...}"} {
		routes = append(routes, RouteConfig{ID: strings.ReplaceAll(strings.Trim(p, "/{}."), "/", "_") + "x", Path: p, Upstream: "crm"})
	}
	c := Config{Routes: routes}
	c.Defaults()
	rt, err := compileRoutes(c.Routes)
	if err != nil {
		b.Fatal(err)
	}
	segs := segsOf("/api/invoices/1234")
	b.ReportAllocs()
	for b.Loop() {
		if r, _, _ := rt.match("crm.example.com", segs, "GET"); r == nil {
			b.Fatal("no match")
		}
	}
}
