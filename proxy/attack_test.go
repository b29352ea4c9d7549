package proxy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// attackRoutes adds routes that the attacks below need: exact and wildcard
// hosts, a POST-only override route, and two routes that share a path but
// differ in method, override and IP list.
func attackRoutes(c *Config) {
	c.Routes = append(c.Routes,
		RouteConfig{ID: "hosted", Host: "crm.example.com", Path: "/api/hosted", Upstream: "crm"},
		RouteConfig{ID: "wild", Host: "*.example.com", Path: "/api/wild", Upstream: "crm"},
		RouteConfig{ID: "legacy.post", Path: "/api/legacy-post/{id}", Methods: []string{"POST"}, Upstream: "crm", MethodOverride: true},
		RouteConfig{ID: "forms.post", Path: "/api/forms/{id}", Methods: []string{"POST"}, Upstream: "crm", MethodOverride: true,
			AllowCIDRs: []string{"203.0.113.0/24"}},
		RouteConfig{ID: "forms.delete", Path: "/api/forms/{id}", Methods: []string{"DELETE"}, Upstream: "crm"},
	)
}

func attackGateway(t *testing.T) *Gateway {
	t.Helper()
	return testGateway(t, echoUpstream(t).URL, attackRoutes)
}

// reqTarget is req with the request target exactly as a server would
// receive it, including targets url.Parse refuses.
func reqTarget(method, target string, hdr ...string) *http.Request {
	r := req(method, "/", hdr...)
	r.RequestURI = target
	return r
}

func withHost(r *http.Request, host string) *http.Request {
	r.Host = host
	return r
}

func withPeer(r *http.Request, peer string) *http.Request {
	r.RemoteAddr = peer
	return r
}

func withBody(r *http.Request, contentType, body string) *http.Request {
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// overrideKeys returns the parameter names of a query or urlencoded form
// that some framework reads as the _method override: decoded, and folded the
// way PHP folds variable names (leading spaces dropped, space and dot turned
// into _, an unmatched [ into _).
func overrideKeys(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(p, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			dk = k
		}
		php := strings.TrimLeft(dk, " ")
		if strings.HasPrefix(php, "[") {
			php = "_" + php[1:]
		}
		php = strings.NewReplacer(" ", "_", ".", "_").Replace(php)
		if php == "_method" || strings.HasPrefix(php, "_method[") {
			out = append(out, k)
		}
	}
	return out
}

func TestAttackHostHeader(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name, target, host string
		want               []int
	}{
		{"upper case is the same host", "/api/hosted", "CRM.EXAMPLE.COM", []int{200}},
		{"port is ignored", "/api/hosted", "crm.example.com:8443", []int{200}},
		{"one trailing dot is the same host", "/api/hosted", "crm.example.com.", []int{200}},
		{"two trailing dots", "/api/hosted", "crm.example.com..", []int{400, 404}},
		{"other host", "/api/hosted", "evil.example", []int{404}},
		{"route host as a prefix", "/api/hosted", "crm.example.com.evil.example", []int{404}},
		{"userinfo before the host", "/api/hosted", "evil.example@crm.example.com", []int{400}},
		{"userinfo after the host", "/api/hosted", "crm.example.com@evil.example", []int{400}},
		{"fragment in host", "/api/hosted", "evil.example#.crm.example.com", []int{400}},
		{"path in host", "/api/hosted", "crm.example.com/x", []int{400}},
		{"percent-encoded dot", "/api/hosted", "crm%2Eexample.com", []int{400}},
		{"non-numeric port", "/api/hosted", "crm.example.com:https", []int{400}},
		{"two ports", "/api/hosted", "crm.example.com:1:2", []int{400}},
		{"Unicode look-alike", "/api/hosted", "crm.ex\u0430mple.com", []int{400}},
		{"space", "/api/hosted", "crm.example.com evil", []int{400}},
		{"NUL", "/api/hosted", "crm.example.com\x00", []int{400}},
		{"IPv6 literal", "/api/contacts", "[::1]", []int{200}},
		{"IPv6 literal with port", "/api/contacts", "[::1]:8443", []int{200}},
		{"unclosed IPv6 literal", "/api/contacts", "[::1", []int{400}},
		{"wildcard subdomain", "/api/wild", "a.example.com", []int{200}},
		{"wildcard apex is not a subdomain", "/api/wild", "example.com", []int{404}},
		{"wildcard with an empty label", "/api/wild", ".example.com", []int{400, 404}},
		// RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid
		// and must be rejected; these all canonicalise to "".
		{"port without host", "/api/contacts", ":443", []int{400}},
		{"only a dot", "/api/contacts", ".", []int{400}},
		{"empty brackets", "/api/contacts", "[]", []int{400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := do(g, withHost(req("GET", tt.target), tt.host))
			if !slices.Contains(tt.want, w.Code) {
				t.Errorf("GET %s Host %q = %d, want one of %v", tt.target, tt.host, w.Code, tt.want)
			}
		})
	}
}

func TestAttackPathTricks(t *testing.T) {
	g := attackGateway(t)
	long := "/api/contacts/" + strings.Repeat("a", 100<<10)
	refused := []struct{ name, target string }{
		{"IIS %u escape of a dot", "/api/contacts/%u002e%u002e"},
		{"mixed-case dot-dot", "/api/contacts/%2E%2e"},
		{"single encoded dot", "/api/contacts/%2e"},
		{"{id} capturing an encoded dot-dot", "/api/contacts/%2E%2E"},
		{"dot-dot before a pattern segment", "/api/%2e%2e/api/contacts"},
		{"overlong dot then a real dot", "/api/contacts/%C0%2E"},
		{"overlong dots on a non-ASCII route", "/api/names/%C0%AE%C0%AE"},
		{"three-byte overlong dot", "/api/names/%E0%80%AE"},
		{"four-byte overlong dot", "/api/names/%F0%80%80%AE"},
		{"overlong slash", "/api/names/a%C0%AFb"},
		{"UTF-16 surrogate", "/api/names/%ED%A0%80"},
		{"beyond U+10FFFF", "/api/names/%F4%90%80%80"},
		{"truncated sequence", "/api/names/%C3"},
		{"raw non-ASCII byte", "/api/names/\xc3\xa9"},
		{"fullwidth slash on an ASCII-only route", "/api/contacts/a%EF%BC%8Fb"},
		{"encoded percent", "/api/contacts/%25"},
		{"double-encoded slash", "/api/contacts/a%252fb"},
		{"encoded semicolon", "/api/contacts/1%3b"},
		{"encoded question mark", "/api/contacts/1%3F"},
		{"encoded hash", "/api/contacts/1%23"},
		{"encoded tab", "/api/contacts/%09"},
		{"raw tab", "/api/contacts/a\tb"},
		{"encoded DEL", "/api/contacts/%7F"},
		{"leading encoded slash", "/%2Fapi/contacts"},
		{"escape cut short", "/api/contacts/%4"},
		{"escape with a non-hex digit", "/api/contacts/%G1"},
		{"overlong dot in the query", "/api/contacts?q=%C0%AE"},
		{"three-byte overlong in the query", "/api/contacts?q=%E0%80%AE"},
		{"truncated sequence in the query", "/api/contacts?q=%C3&b=%A9"},
		{"CRLF in the query", "/api/contacts?q=%0D%0ASet-Cookie:x"},
		{"raw space in the query", "/api/contacts?q=a b"},
		{"fragment after the query", "/api/contacts?q=1#x"},
		{"absolute form", "https://crm.example.com/api/contacts"},
		{"scheme-relative form", "//evil.example/api/contacts"},
		{"authority form", "crm.example.com:443"},
		{"empty target", ""},
		// Unicode compatibility forms that NFKC-normalising backends
		// (IIS, many Python and Java stacks) turn into / . or \.
		{"fullwidth slash on a non-ASCII route", "/api/names/a%EF%BC%8Fb"},
		{"fullwidth dot-dot on a non-ASCII route", "/api/names/%EF%BC%8E%EF%BC%8E"},
		{"two-dot leader on a non-ASCII route", "/api/names/%E2%80%A5"},
		{"fullwidth backslash on a non-ASCII route", "/api/names/a%EF%BC%BCb"},
		// C1 controls are control characters too (NEL ends a line for
		// some parsers).
		{"C1 control NEL on a non-ASCII route", "/api/names/a%C2%85b"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			w, e := do(g, reqTarget("GET", tt.target))
			if w.Code != http.StatusBadRequest {
				t.Errorf("GET %q = %d (upstream saw %q), want 400", tt.target, w.Code, e.RequestURI)
			}
		})
	}

	forwarded := []struct{ name, target, want string }{
		{"unreserved escapes are decoded", "/api/contacts/%61%62%7E", "/api/contacts/ab~"},
		{"other escapes are upper-cased", "/api/names/%c3%a9%2b", "/api/names/%C3%A9%2B"},
		{"raw plus differs from encoded plus", "/api/contacts/a+b", "/api/contacts/a+b"},
		{"three dots are a name, not a dot segment", "/api/contacts/...", "/api/contacts/..."},
		{"query is forwarded as received", "/api/contacts?q=%2e%2E&x=%41", "/api/contacts?q=%2e%2E&x=%41"},
		{"very long segment", long, long},
	}
	for _, tt := range forwarded {
		t.Run(tt.name, func(t *testing.T) {
			w, e := do(g, req("GET", tt.target))
			if w.Code != 200 || e.RequestURI != tt.want {
				t.Errorf("GET %.80q = %d, upstream saw %.80q, want 200 and %.80q", tt.target, w.Code, e.RequestURI, tt.want)
			}
		})
	}

	t.Run("many segments", func(t *testing.T) {
		target := strings.Repeat("/a", 20000)
		if w, _ := do(g, req("GET", target)); w.Code != 404 {
			t.Errorf("GET /a x 20000 = %d, want 404", w.Code)
		}
	})
	t.Run("trailing slash is not the route", func(t *testing.T) {
		for _, target := range []string{"/api/contacts/", "/api/contacts/1/"} {
			if w, _ := do(g, req("GET", target)); w.Code != 404 {
				t.Errorf("GET %s = %d, want 404", target, w.Code)
			}
		}
	})
}

func TestAttackMethodTricks(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name, method, target string
		hdr                  []string
		want                 int
	}{
		{"lower-case get", "get", "/api/contacts", nil, 405},
		{"mixed-case Get", "Get", "/api/contacts", nil, 405},
		{"TRACE with Max-Forwards", "TRACE", "/api/contacts", []string{"Max-Forwards", "0"}, 405},
		{"TRACK", "TRACK", "/api/contacts", nil, 405},
		{"CONNECT in authority form", "CONNECT", "crm.example.com:443", nil, 405},
		{"CONNECT with a path", "CONNECT", "/api/contacts", nil, 405},
		{"IIS DEBUG", "DEBUG", "/api/contacts", nil, 405},
		{"WebDAV PROPFIND", "PROPFIND", "/api/contacts", nil, 405},
		{"OPTIONS asterisk", "OPTIONS", "*", nil, 400},
		{"OPTIONS on a route without it", "OPTIONS", "/api/contacts", nil, 405},
		{"HEAD on a route without it", "HEAD", "/api/contacts", nil, 405},
		{"override header to TRACE", "POST", "/api/legacy/1", []string{"X-HTTP-Method-Override", "TRACE"}, 400},
		{"override query to CONNECT", "POST", "/api/legacy/1?_method=CONNECT", nil, 400},
		{"override list", "POST", "/api/legacy/1", []string{"X-HTTP-Method-Override", "DELETE, GET"}, 400},
		{"override to TRACE where overrides are off", "POST", "/api/contacts", []string{"X-Method-Override", "TRACE"}, 400},
		{"override header with underscores to a method the route lacks", "POST", "/api/legacy-post/1", []string{"X_HTTP_Method_Override", "DELETE"}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, e := do(g, reqTarget(tt.method, tt.target, tt.hdr...))
			if w.Code != tt.want {
				t.Errorf("%s %s = %d (upstream saw %s), want %d", tt.method, tt.target, w.Code, e.Method, tt.want)
			}
			if w.Code == 405 && w.Header().Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
}

// Rails, Laravel and Symfony read _method from the query after decoding its
// name, and PHP folds ".", " " and "[" in names into "_"; every spelling
// must be removed (or refused) where overrides are off, and recognised where
// they are on.
func TestAttackQueryMethodOverride(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name, target string
		want         []int
	}{
		{"literal", "/api/contacts?_method=DELETE&page=2", []int{200}},
		{"repeated, same value", "/api/contacts?_method=DELETE&_method=DELETE", []int{200}},
		{"repeated, conflicting values", "/api/contacts?_method=DELETE&_method=PUT", []int{400}},
		{"percent-encoded underscore", "/api/contacts?%5Fmethod=DELETE", []int{200, 400}},
		{"lower-case escape", "/api/contacts?%5fmethod=DELETE", []int{200, 400}},
		{"encoded letter", "/api/contacts?_%6Dethod=DELETE", []int{200, 400}},
		{"array form", "/api/contacts?_method%5B%5D=DELETE", []int{200, 400}},
		{"PHP dot folding", "/api/contacts?.method=DELETE", []int{200, 400}},
		{"PHP leading space", "/api/contacts?+_method=DELETE", []int{200, 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, e := do(g, req("POST", tt.target))
			if !slices.Contains(tt.want, w.Code) {
				t.Fatalf("POST %s = %d, want one of %v", tt.target, w.Code, tt.want)
			}
			if w.Code != 200 {
				return
			}
			_, q, _ := strings.Cut(e.RequestURI, "?")
			if keys := overrideKeys(q); len(keys) > 0 || e.Method != "POST" {
				t.Errorf("upstream got %s %q: override parameters %q reach a route without overrides", e.Method, e.RequestURI, keys)
			}
		})
	}

	// The route allows only POST, with overrides: a DELETE asked for in
	// any spelling must be routed as DELETE and refused.
	routed := []struct{ name, target string }{
		{"literal", "/api/legacy-post/1?_method=DELETE"},
		{"percent-encoded underscore", "/api/legacy-post/1?%5Fmethod=DELETE"},
		{"encoded letter", "/api/legacy-post/1?_%6Dethod=DELETE"},
	}
	for _, tt := range routed {
		t.Run("override route/"+tt.name, func(t *testing.T) {
			w, e := do(g, req("POST", tt.target))
			if w.Code != 405 && w.Code != 400 {
				t.Errorf("POST %s = %d (upstream saw %q), want 405: the backend runs DELETE on a POST-only route", tt.target, w.Code, e.RequestURI)
			}
		})
	}
}

// Rack and PHP take a Content-Type up to the first "," or " " as the media
// type, and Rails, Laravel and Symfony read _method from urlencoded and
// multipart forms (Laravel also from JSON): a body the gateway does not
// recognise as a form must not carry an override either.
func TestAttackFormBodyOverride(t *testing.T) {
	g := attackGateway(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "name=x&_method=DELETE")
	zw.Close()
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("name", "x")
	_ = mw.WriteField("_method", "DELETE")
	_ = mw.Close()
	tests := []struct {
		name, ct, body string
	}{
		{"urlencoded", "application/x-www-form-urlencoded", "name=x&_method=DELETE"},
		{"urlencoded with charset", "application/x-www-form-urlencoded; charset=utf-8", "_method=DELETE"},
		{"urlencoded upper case", "Application/X-WWW-Form-Urlencoded", "_method=DELETE"},
		{"percent-encoded name", "application/x-www-form-urlencoded", "name=x&%5Fmethod=DELETE"},
		{"PHP dot folding", "application/x-www-form-urlencoded", "name=x&.method=DELETE"},
		{"media type followed by a comma", "application/x-www-form-urlencoded, text/plain", "_method=DELETE"},
		{"media type followed by a space", "application/x-www-form-urlencoded text/plain", "_method=DELETE"},
		{"multipart form", mw.FormDataContentType(), mp.String()},
		{"JSON body", "application/json", `{"name":"x","_method":"DELETE"}`},
		// Apache's DEFLATE input filter and some Rack middleware inflate
		// request bodies before the framework parses the form.
		{"gzip-encoded form", "application/x-www-form-urlencoded", gz.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("POST", "/api/contacts")
			if strings.HasPrefix(tt.name, "gzip") {
				r.Header.Set("Content-Encoding", "gzip")
			}
			w, e := do(g, withBody(r, tt.ct, tt.body))
			if w.Code != 400 {
				t.Errorf("POST %.60q body %.60q = %d (upstream got %s %.60q), want 400", tt.ct, tt.body, w.Code, e.Method, e.Body)
			}
		})
	}
	t.Run("streamed urlencoded body", func(t *testing.T) {
		r := withBody(req("POST", "/api/contacts"), "application/x-www-form-urlencoded", "a=1&_method=DELETE")
		r.ContentLength = -1
		if w, _ := do(g, r); w.Code != 400 {
			t.Errorf("chunked form with _method = %d, want 400", w.Code)
		}
	})
	t.Run("harmless form passes unchanged", func(t *testing.T) {
		w, e := do(g, withBody(req("POST", "/api/contacts"), "application/x-www-form-urlencoded", "q=_method&name=x"))
		if w.Code != 200 || e.Body != "q=_method&name=x" {
			t.Errorf("status %d, upstream body %q, want 200 and the body unchanged", w.Code, e.Body)
		}
	})
}

// Two routes share a path: POST (with overrides, office only) and DELETE
// (open, no overrides). A POST asking for DELETE is routed and checked as
// DELETE; the backend must then run DELETE, never the POST that the POST
// route refuses to this client.
func TestAttackOverrideRouteConfusion(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name string
		r    *http.Request
	}{
		{"header", req("POST", "/api/forms/1", "X-HTTP-Method-Override", "DELETE")},
		{"query", req("POST", "/api/forms/1?_method=DELETE")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, e := do(g, tt.r)
			if w.Code != 200 {
				return // refused: safe
			}
			_, q, _ := strings.Cut(e.RequestURI, "?")
			effective := e.Method
			if v := e.Header.Get("X-Http-Method-Override"); v != "" {
				effective = v
			} else if vs, _ := url.ParseQuery(q); vs.Get("_method") != "" {
				effective = vs.Get("_method")
			}
			if effective != "DELETE" {
				t.Errorf("client outside allow_cidrs: upstream runs %s %q (headers %v), want DELETE or a refusal", effective, e.RequestURI, e.Header)
			}
		})
	}
}

func TestAttackForwardingHeaders(t *testing.T) {
	g := attackGateway(t)

	t.Run("identity headers in every spelling", func(t *testing.T) {
		_, e := do(g, req("GET", "/api/contacts",
			"x-crm-user", "admin", "X_CRM_USER", "admin", "X.Crm.User", "admin", "x-crm_roles", "admin",
			"X-CRM-Email", "admin@example.com", "X_CRM_Assertion", "forged"))
		for k, v := range e.Header {
			if strings.HasPrefix(normName(k), "x-crm") {
				t.Errorf("upstream received %s: %q", k, v)
			}
		}
	})

	t.Run("any X-Forwarded-* header", func(t *testing.T) {
		_, e := do(g, req("GET", "/api/contacts",
			"X-Forwarded-User", "admin", "X-Forwarded-Email", "admin@example.com", "X-Forwarded-Groups", "admins",
			"X-Forwarded-Preferred-Username", "admin", "X-Forwarded-Access-Token", "forged",
			"X-Forwarded-Protocol", "http", "X-Forwarded-Method", "DELETE", "X-Forwarded-Url", "/api/admin/users",
			"X_Forwarded_Host", "evil.example", "X-Forwarded-For", "1.2.3.4"))
		own := map[string]bool{"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true}
		for k, v := range e.Header {
			n := normName(k)
			if strings.HasPrefix(n, "x-forwarded-") && !own[n] {
				t.Errorf("upstream received client-sent %s: %q", k, v)
			}
		}
		// On a route for any host the client chose the Host, so the
		// gateway vouches for none (see TestGatewayForwardedHost).
		if got := e.Header.Get("X-Forwarded-Host"); got != "" {
			t.Errorf("X-Forwarded-Host = %q, want none on a route without a host", got)
		}
	})

	// The client names the gateway's own headers in Connection, hoping the
	// proxy drops them after the gateway set them.
	t.Run("Connection cannot remove the gateway's headers", func(t *testing.T) {
		w, e := do(g, req("GET", "/api/contacts",
			"Connection", "x-crm-user, X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id",
			"X-CRM-User", "admin"))
		want := map[string]string{
			"X-Forwarded-For": "192.0.2.10", "X-Real-Ip": "192.0.2.10", "X-Forwarded-Proto": "https",
			"X-Request-Id": w.Header().Get("X-Request-Id"),
		}
		for k, v := range want {
			if got := e.Header.Get(k); got != v || v == "" {
				t.Errorf("upstream %s = %q, want %q", k, got, v)
			}
		}
		if got := e.Header.Get("X-Crm-User"); got != "" {
			t.Errorf("upstream X-CRM-User = %q", got)
		}
	})

	// httpoxy (CVE-2016-5385): CGI turns a Proxy header into HTTP_PROXY,
	// which PHP, Go and Python CGI HTTP clients take as their outbound
	// proxy.
	t.Run("httpoxy Proxy header", func(t *testing.T) {
		_, e := do(g, req("GET", "/api/contacts", "Proxy", "http://127.0.0.1:1"))
		if got := e.Header.Values("Proxy"); len(got) != 0 {
			t.Errorf("upstream received Proxy: %q", got)
		}
	})

	t.Run("X-Forwarded-Host is never the client's", func(t *testing.T) {
		_, e := do(g, req("GET", "/api/contacts", "X-Forwarded-Host", "evil.example", "Forwarded", "host=evil.example", "X-Host", "evil.example"))
		for k, v := range e.Header {
			if strings.Contains(strings.Join(v, ","), "evil.example") {
				t.Errorf("upstream %s = %q", k, v)
			}
		}
	})
}

// CGI, PHP and Rack fold "-" and "_" into the same variable
// (HTTP_X_API_KEY), so two spellings of a single-value header are a
// duplicate: the gateway would check one while the backend reads the other.
func TestAttackDuplicateSpellings(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name string
		hdr  []string
	}{
		{"Authorization twice", []string{"Authorization", "Bearer a", "authorization", "Bearer b"}},
		{"Content-Type twice", []string{"Content-Type", "application/json", "Content-Type", "application/x-www-form-urlencoded"}},
		{"identity header twice", []string{"X-CRM-User", "a", "x-crm-user", "b"}},
		{"X-API-Key and X_API_Key", []string{"X-API-Key", "valid", "X_API_Key", "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w, _ := do(g, req("GET", "/api/contacts", tt.hdr...)); w.Code != 400 {
				t.Errorf("%q = %d, want 400", tt.hdr, w.Code)
			}
		})
	}
}

func TestAttackCookies(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name    string
		cookies []string // one Cookie header each
		want    []string // the cookies the upstream must get, in order
	}{
		{"upper case", []string{"CRMGATE_SESSION=x; a=1"}, []string{"a=1"}},
		{"__Host- in odd case", []string{"__HOST-Crmgate=x; a=1"}, []string{"a=1"}},
		{"__Secure- prefix", []string{"a=1; __secure-crmgate_s=x"}, []string{"a=1"}},
		{"quoted value", []string{`crmgate_session="x"; a=1`}, []string{"a=1"}},
		{"no value", []string{"crmgate_session; a=1"}, []string{"a=1"}},
		{"spaces around the name", []string{"a=1;   crmgate_session  =x"}, []string{"a=1"}},
		{"only the gateway's", []string{"crmgate_session=x"}, nil},
		{"second Cookie header", []string{"a=1", "crmgate_session=x; b=2"}, []string{"a=1", "b=2"}},
		{"empty first Cookie header", []string{"", "crmgate_session=x; b=2"}, []string{"b=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("GET", "/api/contacts")
			for _, c := range tt.cookies {
				r.Header.Add("Cookie", c)
			}
			w, e := do(g, r)
			if w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
			var got []string
			for _, v := range e.Header.Values("Cookie") {
				for _, p := range strings.Split(v, ";") {
					if p = strings.TrimSpace(p); p != "" {
						got = append(got, p)
					}
				}
			}
			for _, c := range got {
				name, _, _ := strings.Cut(c, "=")
				if isGatewayCookie(name, []string{"crmgate"}) {
					t.Errorf("upstream got the gateway's cookie %q (all: %q)", c, e.Header.Values("Cookie"))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("upstream cookies = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAttackRequestID(t *testing.T) {
	g := attackGateway(t)
	generated := func(id string) bool {
		if len(id) != 32 {
			return false
		}
		for _, c := range id {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	tests := []struct {
		name, peer string
		ids        []string
		keep       bool
	}{
		{"untrusted peer, well-formed id", "192.0.2.10:1", []string{"attacker-id-123456"}, false},
		{"trusted peer, well-formed id", "10.1.1.1:1", []string{"proxy-id-123456"}, true},
		{"trusted peer, CRLF", "10.1.1.1:1", []string{"abcdefgh\r\nSet-Cookie: crmgate_session=x"}, false},
		{"trusted peer, markup", "10.1.1.1:1", []string{"<script>alert(1)</script>"}, false},
		{"trusted peer, spaces", "10.1.1.1:1", []string{"abcdefgh ijklmnop"}, false},
		{"trusted peer, 129 characters", "10.1.1.1:1", []string{strings.Repeat("a", 129)}, false},
		{"trusted peer, 1 MB", "10.1.1.1:1", []string{strings.Repeat("a", 1<<20)}, false},
		{"trusted peer, two ids", "10.1.1.1:1", []string{"proxy-id-123456", "other-id-123456"}, false},
		{"trusted peer, non-ASCII", "10.1.1.1:1", []string{"abcdefgh\u00e9"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range []string{"/api/contacts", "/nothing"} {
				r := withPeer(req("GET", target), tt.peer)
				for _, id := range tt.ids {
					r.Header.Add("X-Request-Id", id)
				}
				w, e := do(g, r)
				got := w.Header().Values("X-Request-Id")
				if len(got) != 1 {
					t.Fatalf("%s: response X-Request-Id = %q, want one", target, got)
				}
				if tt.keep && got[0] != tt.ids[0] || !tt.keep && !generated(got[0]) {
					t.Errorf("%s: response X-Request-Id = %.60q, keep=%v", target, got[0], tt.keep)
				}
				if w.Code == 200 && e.Header.Get("X-Request-Id") != got[0] {
					t.Errorf("%s: upstream X-Request-Id = %.60q, want %q", target, e.Header.Get("X-Request-Id"), got[0])
				}
				if w.Code != 200 {
					var p problem
					if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.RequestID != got[0] {
						t.Errorf("%s: problem request_id = %.60q (%v), want %q", target, p.RequestID, err, got[0])
					}
				}
			}
		})
	}
}

func TestAttackIPLists(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name, peer string
		hdr        []string
		want       int
	}{
		{"denied address as an IPv4-mapped IPv6 peer", "[::ffff:192.0.2.66]:1", nil, 403},
		{"allowed address as an IPv4-mapped IPv6 peer", "[::ffff:192.0.2.10]:1", nil, 200},
		{"trusted proxy forwards a mapped denied address", "10.1.1.1:1", []string{"X-Forwarded-For", "::ffff:192.0.2.66"}, 403},
		{"trusted proxy forwards a denied address with port", "10.1.1.1:1", []string{"X-Forwarded-For", "192.0.2.66:4444"}, 403},
		{"untrusted peer claims an allowed address", "198.51.100.7:1", []string{"X-Forwarded-For", "192.0.2.10", "X-Real-IP", "192.0.2.10"}, 403},
		{"attacker prepends an allowed address", "10.1.1.1:1", []string{"X-Forwarded-For", "192.0.2.10, 198.51.100.7"}, 403},
		{"zero-padded address is not believed", "10.1.1.1:1", []string{"X-Forwarded-For", "192.000.002.010"}, 403},
		{"split across two headers", "10.1.1.1:1", []string{"X-Forwarded-For", "192.0.2.10", "X-Forwarded-For", "198.51.100.7"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if w, _ := do(g, withPeer(req("GET", "/api/office", tt.hdr...), tt.peer)); w.Code != tt.want {
				t.Errorf("peer %s %q = %d, want %d", tt.peer, tt.hdr, w.Code, tt.want)
			}
		})
	}
}

// responseUpstream answers /api/contacts/{case} with the Set-Cookie values
// and headers of that case.
func responseUpstream(t *testing.T, cookies map[string][]string, hdr map[string]http.Header) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := strings.TrimPrefix(r.URL.Path, "/api/contacts/")
		for _, v := range cookies[c] {
			w.Header().Add("Set-Cookie", v)
		}
		for k, vs := range hdr[c] {
			w.Header()[k] = vs
		}
		io.WriteString(w, "{}")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// browserCookieName is the name under which a browser sends back the
// cookie a Set-Cookie value stores (RFC 6265bis §5.6, §5.8.3): a cookie
// with an empty name is sent as its bare value, so "=crmgate_session=x"
// comes back as "crmgate_session=x".
func browserCookieName(setCookie string) string {
	nv, _, _ := strings.Cut(setCookie, ";")
	name, value, ok := strings.Cut(nv, "=")
	if !ok {
		return strings.TrimSpace(nv)
	}
	if name = strings.TrimSpace(name); name == "" {
		name, _, _ = strings.Cut(value, "=")
		return strings.TrimSpace(name)
	}
	return name
}

func TestAttackResponseHeaders(t *testing.T) {
	cookies := map[string][]string{
		"upper":    {"CRMGATE_session=evil; Path=/", "crm=1; Path=/"},
		"host":     {"__HOST-CrmGate=evil; Path=/; Secure", "crm=1; Path=/"},
		"secure":   {"__Secure-crmgate_s=evil; Path=/; Secure", "crm=1; Path=/"},
		"spaced":   {"  crmgate_session =evil; Path=/", "crm=1; Path=/"},
		"nameless": {"=crmgate_session=evil; Path=/", "crm=1; Path=/"},
	}
	hdr := map[string]http.Header{
		"hop": {
			"Connection":                {"Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, Cache-Control"},
			"Strict-Transport-Security": {"max-age=0"}, "X-Content-Type-Options": {"sniff"},
			"X-Frame-Options": {"ALLOWALL"}, "Cache-Control": {"public, max-age=600"},
		},
		"rid": {"X-Request-Id": {"upstream-chosen-id"}},
		// An empty value is no policy: the defaults must still apply.
		"empty": {"X-Frame-Options": {""}, "Content-Security-Policy": {""}, "Referrer-Policy": {""}},
		"cache": {
			"Cache-Control": {"public, max-age=600"}, "Expires": {"Thu, 01 Jan 2099 00:00:00 GMT"},
			"Strict-Transport-Security": {"max-age=0"}, "X-Content-Type-Options": {"sniff"},
		},
	}
	g := testGateway(t, responseUpstream(t, cookies, hdr).URL, nil)

	for name := range cookies {
		t.Run("Set-Cookie/"+name, func(t *testing.T) {
			w, _ := do(g, req("GET", "/api/contacts/"+name))
			got := w.Header().Values("Set-Cookie")
			for _, c := range got {
				if isGatewayCookie(browserCookieName(c), []string{"crmgate"}) {
					t.Errorf("upstream set the gateway's cookie: %q", c)
				}
			}
			if !slices.Contains(got, "crm=1; Path=/") {
				t.Errorf("Set-Cookie = %q, want the CRM's own cookie kept", got)
			}
		})
	}
	for _, name := range []string{"hop", "cache"} {
		t.Run("security headers survive "+name, func(t *testing.T) {
			w, _ := do(g, req("GET", "/api/contacts/"+name))
			want := map[string]string{
				"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
			}
			if name == "hop" {
				want["X-Frame-Options"] = "DENY"
			}
			for k, v := range want {
				if got := w.Header().Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := w.Header().Get("Expires"); got != "" {
				t.Errorf("Expires = %q survived no-store", got)
			}
		})
	}
	t.Run("empty upstream policies do not disable the defaults", func(t *testing.T) {
		w, _ := do(g, req("GET", "/api/contacts/empty"))
		want := map[string]string{
			"X-Frame-Options": "DENY", "Referrer-Policy": "strict-origin-when-cross-origin",
			"Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
		}
		for k, v := range want {
			if got := w.Header().Values(k); !slices.Contains(got, v) {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	})
	t.Run("upstream cannot choose the request id", func(t *testing.T) {
		w, _ := do(g, req("GET", "/api/contacts/rid"))
		if got := w.Header().Values("X-Request-Id"); len(got) != 1 || got[0] == "upstream-chosen-id" {
			t.Errorf("X-Request-Id = %q, want only the gateway's", got)
		}
	})
}

// An upstream that sends 103 Early Hints before its answer: the proxy
// writes the 1xx with the client response's header and then clears it, so
// whatever the gateway set there before forwarding is gone from the final
// response unless it is set again.
func TestAttackEarlyHints(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.Header().Set("Set-Cookie", "crmgate_session=evil; Path=/")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Del("Set-Cookie")
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		io.WriteString(w, `{"id":1}`)
	}))
	t.Cleanup(up.Close)
	rs := startServer(t, up.URL, nil)
	var hints []http.Header
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, http.Header(h).Clone())
			return nil
		},
	})
	r, _ := http.NewRequestWithContext(ctx, "GET", rs.url("/api/contacts/1"), nil)
	res, err := rs.client(false).Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(hints) == 0 {
		t.Fatal("the 103 did not reach the client; the test proves nothing")
	}
	t.Run("final response keeps the gateway's headers", func(t *testing.T) {
		want := map[string]string{
			"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff",
			"Cache-Control": "no-store", "X-Frame-Options": "DENY",
		}
		for k, v := range want {
			if got := res.Header.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if id := res.Header.Get("X-Request-Id"); len(id) != 32 {
			t.Errorf("X-Request-Id = %q, want the gateway's", id)
		}
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Cookie") {
			t.Errorf("Vary = %q, want Cookie", res.Header.Values("Vary"))
		}
	})
	t.Run("the 103 does not set the gateway's cookie", func(t *testing.T) {
		for _, h := range hints {
			for _, c := range h.Values("Set-Cookie") {
				if isGatewayCookie(browserCookieName(c), []string{"crmgate"}) {
					t.Errorf("103 carries Set-Cookie %q", c)
				}
			}
		}
	})
}

// The framing guard switches a connection to passthrough after any request
// with a non-empty Upgrade field, so every answer that is not 101 must close
// the connection. Without "Connection: upgrade" the proxy drops Upgrade from
// the upstream request, which is how the answer can lose its close.
func TestAttackUpgradeKeepsConnection(t *testing.T) {
	g := attackGateway(t)
	tests := []struct {
		name string
		hdr  []string
	}{
		{"Upgrade with Connection: upgrade", []string{"Upgrade", "websocket", "Connection", "Upgrade"}},
		{"Upgrade without Connection", []string{"Upgrade", "websocket"}},
		{"Upgrade with Connection: keep-alive", []string{"Upgrade", "websocket", "Connection", "keep-alive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := do(g, req("GET", "/ws", tt.hdr...))
			if w.Code == http.StatusSwitchingProtocols {
				return
			}
			if !strings.EqualFold(w.Header().Get("Connection"), "close") {
				t.Errorf("status %d with Connection %q, want Connection: close after an upgrade that did not happen", w.Code, w.Header().Get("Connection"))
			}
		})
	}
}

func TestAttackRedirectListener(t *testing.T) {
	rs := startServer(t, "http://127.0.0.1:1", nil)
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://" + rs.srv.HTTPAddr().String()
	tests := []struct {
		name, host string
		hdr        []string
		want       int
	}{
		{"X-Forwarded-Host is ignored", "crm.example.com", []string{"X-Forwarded-Host", "evil.example"}, 308},
		{"Forwarded host is ignored", "crm.example.com", []string{"Forwarded", "host=evil.example"}, 308},
		{"X-Original-URL is ignored", "crm.example.com", []string{"X-Original-URL", "//evil.example/"}, 308},
		{"userinfo in Host", "crm.example.com@evil.example", nil, 400},
		{"port without host", ":80", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", base+"/api/contacts", nil)
			r.Host = tt.host
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				r.Header.Set(tt.hdr[i], tt.hdr[i+1])
			}
			res, err := c.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			loc := res.Header.Get("Location")
			if res.StatusCode != tt.want || strings.Contains(loc, "evil.example") {
				t.Errorf("status %d Location %q, want %d and no client-chosen host", res.StatusCode, loc, tt.want)
			}
			if tt.want == 308 && !strings.HasPrefix(loc, "https://crm.example.com:") {
				t.Errorf("Location = %q, want the Host's own origin", loc)
			}
		})
	}
}

// waitClosed reads from c until the server closes it, and reports how long
// that took; it gives up after limit.
func waitClosed(c net.Conn, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return time.Since(start), false
			}
			return time.Since(start), true
		}
	}
}

// drip writes b one byte at a time every gap until it is written or the
// connection fails.
func drip(c net.Conn, b []byte, gap time.Duration) {
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			return
		}
		time.Sleep(gap)
	}
}

func TestAttackSlowloris(t *testing.T) {
	const timeout = 300 * time.Millisecond
	rs := startServer(t, echoUpstream(t).URL, func(c *Config) {
		c.Server.HandshakeTimeout = timeout
		c.Server.ReadHeaderTimeout = timeout
	})
	addr := rs.srv.Addr().String()
	tlsConf := func(proto string) *tls.Config {
		return &tls.Config{RootCAs: rs.pool, ServerName: "localhost", NextProtos: []string{proto}}
	}

	t.Run("TLS handshake dripped byte by byte", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The start of a ClientHello record, then one byte every 50ms.
		go drip(c, append([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, bytes.Repeat([]byte{0}, 200)...), 50*time.Millisecond)
		if d, closed := waitClosed(c, 3*time.Second); !closed || d > 2*time.Second {
			t.Errorf("dripped handshake: closed=%v after %s, want closed within ~%s", closed, d, timeout)
		}
	})

	t.Run("HTTP/1.1 head never finished", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tlsConf("http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /api/contacts HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n")
		if d, closed := waitClosed(c, 3*time.Second); !closed || d > 2*time.Second {
			t.Errorf("partial head: closed=%v after %s, want closed within ~%s", closed, d, timeout)
		}
	})

	t.Run("HTTP/1.1 head dripped byte by byte", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tlsConf("http/1.1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go drip(c, []byte("GET /api/contacts HTTP/1.1\r\nHost: localhost\r\n"+strings.Repeat("X-A: 1\r\n", 50)+"\r\n"), 20*time.Millisecond)
		if d, closed := waitClosed(c, 3*time.Second); !closed || d > 2*time.Second {
			t.Errorf("dripped head: closed=%v after %s, want closed within ~%s", closed, d, timeout)
		}
	})

	// HTTP/2 has its own framing: a HEADERS frame without END_HEADERS
	// and no CONTINUATION is a request head that never ends.
	t.Run("HTTP/2 header block never finished", func(t *testing.T) {
		t.Parallel()
		c, err := tls.Dial("tcp", addr, tlsConf("h2"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Fatalf("ALPN %q, want h2", p)
		}
		io.WriteString(c, http2.ClientPreface)
		fr := http2.NewFramer(c, c)
		_ = fr.WriteSettings()
		// Settle the SETTINGS exchange first: any frame sent inside an
		// open header block is a protocol error that closes at once.
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		for gotSettings, gotAck := false, false; !gotSettings || !gotAck; {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if sf, ok := f.(*http2.SettingsFrame); ok {
				if sf.IsAck() {
					gotAck = true
				} else {
					gotSettings = true
					_ = fr.WriteSettingsAck()
				}
			}
		}
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/api/contacts"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: false})
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(3 * time.Second))
		for {
			_, err := fr.ReadFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() || time.Since(start) > 2*time.Second {
					t.Errorf("unfinished HTTP/2 header block: still open after %s, want closed within ~%s (read_header_timeout)", time.Since(start).Round(time.Millisecond), timeout)
				}
				return
			}
		}
	})
}

// Hundreds of connections that never send anything, or finish the
// handshake and then idle, neither stop others from being served nor
// stay open past the timeouts.
func TestAttackIdleConnections(t *testing.T) {
	const timeout = 500 * time.Millisecond
	rs := startServer(t, echoUpstream(t).URL, func(c *Config) {
		c.Server.HandshakeTimeout = timeout
		c.Server.ReadHeaderTimeout = timeout
	})
	addr := rs.srv.Addr().String()
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	var wg sync.WaitGroup
	for i := range 250 {
		wg.Go(func() {
			var c net.Conn
			var err error
			if i%5 == 0 {
				c, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: rs.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			} else {
				c, err = net.Dial("tcp", addr)
			}
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) < 200 {
		t.Fatalf("only %d idle connections opened", len(conns))
	}

	start := time.Now()
	res, err := rs.client(false).Get(rs.url("/api/contacts"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("with %d idle connections: status %d after %s, want 200 promptly", len(conns), res.StatusCode, time.Since(start))
	}

	var open int
	var owg sync.WaitGroup
	var omu sync.Mutex
	for _, c := range conns {
		owg.Go(func() {
			if _, closed := waitClosed(c, 3*time.Second); !closed {
				omu.Lock()
				open++
				omu.Unlock()
			}
		})
	}
	owg.Wait()
	if open > 0 {
		t.Errorf("%d of %d idle connections still open 3s after a %s timeout", open, len(conns), timeout)
	}
}
