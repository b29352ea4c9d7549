package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// echoed is what the test upstream saw.
type echoed struct {
	Method, Path, RawPath, RequestURI, Host string
	Header                                  http.Header
	Body                                    string
}

func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		case "/redirect":
			w.Header().Set("Location", "http://"+r.Host+"/login?next=%2F")
			w.WriteHeader(http.StatusFound)
			return
		case "/csp":
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
			w.Header().Set("Set-Cookie", "crmgate_session=evil; Path=/")
			w.Header().Add("Set-Cookie", "crm=1; Path=/")
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("X-Powered-By", "PHP/5.4.0")
			w.Header().Set("Server", "Apache/2.2.3 (CentOS)")
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(b)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func testGateway(t *testing.T, upstreamURL string, mod func(*Config)) *Gateway {
	t.Helper()
	return testGatewayWith(t, upstreamURL, mod, Deps{})
}

// testGatewayWith builds a gateway with deps; without an authenticator,
// routes that do not say otherwise are public (auth: none).
func testGatewayWith(t testing.TB, upstreamURL string, mod func(*Config), d Deps) *Gateway {
	t.Helper()
	c := Config{
		Upstreams: map[string]UpstreamConfig{"crm": {URL: upstreamURL}},
		Server:    ServerConfig{TrustedProxies: []string{"10.0.0.0/8"}},
		Routes: []RouteConfig{
			{ID: "contacts.list", Path: "/api/contacts", Methods: []string{"GET", "POST"}, Upstream: "crm"},
			{ID: "contacts.item", Path: "/api/contacts/{id}", Methods: []string{"GET", "PUT", "DELETE"}, Upstream: "crm", MaxBodyBytes: 64},
			{ID: "override", Path: "/api/legacy/{id}", Methods: []string{"POST", "DELETE"}, Upstream: "crm", MethodOverride: true},
			{ID: "intl", Path: "/api/names/{name}", Upstream: "crm", AllowNonASCII: true},
			{ID: "office", Path: "/api/office", Upstream: "crm", AllowCIDRs: []string{"192.0.2.0/24"}, DenyCIDRs: []string{"192.0.2.66"}},
			{ID: "slow", Path: "/slow", Upstream: "crm", Timeout: 50 * time.Millisecond},
			{ID: "csp", Path: "/csp", Upstream: "crm", Cache: "private"},
			{ID: "redirect", Path: "/redirect", Upstream: "crm"},
			{ID: "ws", Path: "/ws", Upstream: "crm", WebSocket: true},
		},
	}
	if mod != nil {
		mod(&c)
	}
	if d.Auth == nil {
		for i := range c.Routes {
			if c.Routes[i].Auth == "" {
				c.Routes[i].Auth = AuthNone
			}
		}
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	g, err := New(c, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func do(g *Gateway, r *http.Request) (*httptest.ResponseRecorder, echoed) {
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	var e echoed
	if w.Code == http.StatusOK {
		_ = json.Unmarshal(w.Body.Bytes(), &e)
	}
	return w, e
}

func req(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, "https://crm.example.com"+target, nil)
	r.RequestURI = target
	r.RemoteAddr = "192.0.2.10:5555"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func TestGatewayRouting(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	tests := []struct {
		name, method, target string
		want                 int
		allow                string
	}{
		{"forwarded", "GET", "/api/contacts", 200, ""},
		{"param", "GET", "/api/contacts/7", 200, ""},
		{"default deny", "GET", "/api/secret", 404, ""},
		{"prefix is not a route", "GET", "/api/contacts/7/notes", 404, ""},
		{"method not allowed", "PATCH", "/api/contacts/7", 405, "GET, PUT, DELETE"},
		{"unknown method", "PROPFIND", "/api/contacts", 405, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{"trace", "TRACE", "/api/contacts", 405, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"},
		{"traversal", "GET", "/api/contacts/..%2fadmin", 400, ""},
		{"non-ascii refused", "GET", "/api/contacts/%C3%A9", 400, ""},
		{"non-ascii allowed by route", "GET", "/api/names/%C3%A9", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := do(g, req(tt.method, tt.target))
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d, want %d (%s)", tt.method, tt.target, w.Code, tt.want, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if w.Code >= 400 {
				if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q, want application/problem+json", ct)
				}
				var p problem
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != tt.want || p.RequestID == "" {
					t.Errorf("problem body = %s (%v), want status %d and a request id", w.Body, err, tt.want)
				}
			}
		})
	}
}

func TestGatewayExactPathUpstream(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	w, e := do(g, req("GET", "/api/names/a%2bb%20%C3%A9?x=%41&y=1"))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if want := "/api/names/a%2Bb%20%C3%A9?x=%41&y=1"; e.RequestURI != want {
		t.Errorf("upstream RequestURI = %q, want %q", e.RequestURI, want)
	}
	if e.Host != strings.TrimPrefix(g.upstreams["crm"].url.Host, "") {
		t.Errorf("upstream Host = %q, want the upstream's own", e.Host)
	}
}

// An attacker sets the headers the CRM trusts, in every spelling a lenient
// backend might fold to the same name, and the forwarding headers it might
// believe; none of them reaches the upstream.
func TestGatewayStripsSpoofedHeaders(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	r := req("GET", "/api/contacts",
		"X-CRM-User", "admin", "X_CRM_User", "admin", "x-crm.user", "admin", "X-Crm-Roles", "admin",
		"X-Forwarded-For", "1.2.3.4", "Forwarded", "for=1.2.3.4", "X-Real-IP", "1.2.3.4",
		"X-Forwarded-Host", "evil.example", "X-Original-URL", "/api/admin/users", "X-Rewrite-URL", "/api/admin/users",
		"True-Client-IP", "1.2.3.4", "X-Request-Id", "attacker-chosen-id",
		"X-HTTP-Method-Override", "DELETE", "Cookie", "crmgate_session=abc; crm=keep; __Host-crmgate=x; __Secure-CRMGATE_s=y",
		"Connection", "X-Keep-Me", "X-Keep-Me", "v", "X-Other", "kept")
	w, e := do(g, r)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	for k, v := range e.Header {
		n := normName(k)
		if strings.HasPrefix(n, "x-crm") || n == "x-original-url" || n == "x-rewrite-url" || n == "true-client-ip" || n == "forwarded" || n == "x-http-method-override" || n == "x-keep-me" {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	checks := map[string]string{
		"X-Forwarded-For": "192.0.2.10", "X-Real-Ip": "192.0.2.10", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": "", "Cookie": "crm=keep", "X-Other": "kept",
	}
	for k, want := range checks {
		if got := strings.Join(e.Header[k], ","); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	if rid := e.Header.Get("X-Request-Id"); rid == "attacker-chosen-id" || len(rid) != 32 {
		t.Errorf("upstream X-Request-Id = %q, want a generated id", rid)
	}
	if e.Method != "GET" {
		t.Errorf("upstream method = %q, want GET", e.Method)
	}
}

// Link poisoning: a backend that builds URLs from X-Forwarded-Host must only
// ever see a host that configuration vouched for.
func TestGatewayForwardedHost(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, func(c *Config) {
		c.Routes = append(c.Routes, RouteConfig{ID: "hosted", Host: "crm.example.com", Path: "/hosted", Upstream: "crm"})
	})
	_, e := do(g, req("GET", "/hosted", "X-Forwarded-Host", "evil.example"))
	if got := e.Header.Get("X-Forwarded-Host"); got != "crm.example.com" {
		t.Errorf("host route: X-Forwarded-Host = %q, want crm.example.com", got)
	}
	r := req("GET", "/api/contacts")
	r.Host = "evil.example"
	_, e = do(g, r)
	if got := e.Header.Get("X-Forwarded-Host"); got != "" {
		t.Errorf("route for any host: X-Forwarded-Host = %q, want none", got)
	}
}

// The upstream redirects to its own internal address; the client is sent to
// the gateway instead, and never learns the internal address.
func TestGatewayRewritesUpstreamRedirects(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req("GET", "/redirect"))
	if got := w.Header().Get("Location"); w.Code != 302 || got != "https://crm.example.com/login?next=%2F" {
		t.Errorf("redirect = %d %q, want 302 to the gateway's own origin", w.Code, got)
	}
}

func TestGatewayTrustedProxy(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	tests := []struct {
		name, peer, xff, want string
	}{
		{"untrusted peer ignored", "192.0.2.10:1", "198.51.100.1", "192.0.2.10"},
		{"trusted peer believed", "10.1.1.1:1", "198.51.100.1", "198.51.100.1"},
		{"right-most untrusted wins", "10.1.1.1:1", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"},
		{"malformed chain not believed", "10.1.1.1:1", "6.6.6.6, garbage", "10.1.1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req("GET", "/api/contacts", "X-Forwarded-For", tt.xff, "X-Request-Id", "from-proxy-123456")
			r.RemoteAddr = tt.peer
			w, e := do(g, r)
			if got := e.Header.Get("X-Forwarded-For"); got != tt.want {
				t.Errorf("client = %q, want %q", got, tt.want)
			}
			trusted := strings.HasPrefix(tt.peer, "10.")
			if got := w.Header().Get("X-Request-Id"); (got == "from-proxy-123456") != trusted {
				t.Errorf("request id %q accepted=%v, want accepted only from trusted proxy", got, !trusted)
			}
		})
	}
}

func TestGatewayRejects(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	big := strings.Repeat("x", 65)
	tests := []struct {
		name string
		r    *http.Request
		want int
	}{
		{"duplicate authorization", req("GET", "/api/contacts", "Authorization", "a", "Authorization", "b"), 400},
		{"duplicate api key", req("GET", "/api/contacts", "X-API-Key", "a", "X-Api-Key", "b"), 400},
		{"duplicate identity header", req("GET", "/api/contacts", "X-CRM-User", "a", "X-CRM-User", "b"), 400},
		{"h2c upgrade", req("GET", "/api/contacts", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA", "Connection", "Upgrade, HTTP2-Settings"), 400},
		{"websocket on a route without it", req("GET", "/api/contacts", "Upgrade", "websocket", "Connection", "Upgrade"), 400},
		{"conflicting overrides", req("POST", "/api/legacy/1", "X-HTTP-Method-Override", "DELETE", "X-Method-Override", "PUT"), 400},
		{"unknown override", req("POST", "/api/legacy/1", "X-HTTP-Method-Override", "TRACE"), 400},
		{"ip denied", req("GET", "/api/office"), 200},
		{"bad host", func() *http.Request { r := req("GET", "/api/contacts"); r.Host = "evil.example/x"; return r }(), 400},
		{"body too large by length", func() *http.Request {
			r := req("PUT", "/api/contacts/1")
			r.Body = io.NopCloser(strings.NewReader(big))
			r.ContentLength = int64(len(big))
			return r
		}(), 413},
		{"body too large streamed", func() *http.Request {
			r := req("PUT", "/api/contacts/1")
			r.Body = io.NopCloser(strings.NewReader(big))
			r.ContentLength = -1
			return r
		}(), 413},
		{"form method override", func() *http.Request {
			r := httptest.NewRequest("POST", "/api/contacts", strings.NewReader("name=x&_method=DELETE"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}(), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := do(g, tt.r)
			if w.Code != tt.want {
				t.Errorf("status = %d, want %d (%s)", w.Code, tt.want, w.Body)
			}
		})
	}
}

func TestGatewayIPLists(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	for peer, want := range map[string]int{"192.0.2.10:1": 200, "192.0.2.66:1": 403, "198.51.100.7:1": 403, "[::1]:1": 403} {
		r := req("GET", "/api/office")
		r.RemoteAddr = peer
		if w, _ := do(g, r); w.Code != want {
			t.Errorf("peer %s: status %d, want %d", peer, w.Code, want)
		}
	}
}

func TestGatewayMethodOverride(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	t.Run("stripped where not allowed", func(t *testing.T) {
		w, e := do(g, req("GET", "/api/contacts?_method=DELETE&page=2", "X-HTTP-Method-Override", "DELETE"))
		if w.Code != 200 || e.RequestURI != "/api/contacts?page=2" || e.Header.Get("X-Http-Method-Override") != "" {
			t.Errorf("status %d, upstream %q %v; want override removed", w.Code, e.RequestURI, e.Header)
		}
	})
	t.Run("effective method routed where allowed", func(t *testing.T) {
		r := req("POST", "/api/legacy/1", "X-HTTP-Method-Override", "DELETE")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestGatewayResponseHeaders(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	w, _ := do(g, req("GET", "/api/contacts"))
	want := map[string]string{
		"Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "DENY",
		"Referrer-Policy":           "strict-origin-when-cross-origin",
		"Content-Security-Policy":   "frame-ancestors 'none'; object-src 'none'; base-uri 'self'",
		"Cache-Control":             "no-store",
		"Vary":                      "Cookie, Authorization",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	w, _ = do(g, req("GET", "/csp"))
	if got := w.Header().Get("Content-Security-Policy"); got != "default-src 'self'" {
		t.Errorf("upstream CSP replaced: %q", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "private, max-age=60" {
		t.Errorf("private route Cache-Control = %q", got)
	}
	if got := w.Header().Get("Server") + w.Header().Get("X-Powered-By"); got != "" {
		t.Errorf("backend software leaked: %q", got)
	}
	if got := w.Header().Values("Set-Cookie"); len(got) != 1 || !strings.HasPrefix(got[0], "crm=") {
		t.Errorf("Set-Cookie = %q, want only the CRM's own cookie", got)
	}
	w, _ = do(g, req("GET", "/nothing"))
	if w.Header().Get("Strict-Transport-Security") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("gateway error lacks security headers: %v", w.Header())
	}
}

func TestGatewayUpstreamFailures(t *testing.T) {
	t.Run("timeout is 504", func(t *testing.T) {
		g := testGateway(t, echoUpstream(t).URL, nil)
		w, _ := do(g, req("GET", "/slow"))
		if w.Code != http.StatusGatewayTimeout {
			t.Errorf("status %d, want 504", w.Code)
		}
	})
	t.Run("down is 502", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		g := testGateway(t, url, nil)
		w, _ := do(g, req("GET", "/api/contacts"))
		if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), "127.0.0.1") {
			t.Errorf("status %d body %s, want 502 without internals", w.Code, w.Body)
		}
	})
}

func TestGatewayErrorPages(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	w, _ := do(g, req("GET", "/nothing", "Accept", "text/html,application/xhtml+xml"))
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" || !strings.Contains(w.Body.String(), "Request id") {
		t.Errorf("browser error = %q %s, want an HTML page with the request id", ct, w.Body)
	}
	w, _ = do(g, req("GET", "/api/%3Cscript%3E", "Accept", "text/html"))
	if strings.Contains(w.Body.String(), "<script>") {
		t.Errorf("error page reflects input: %s", w.Body)
	}
}

func benchUpstream(b *testing.B) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":1,"name":"Ada"}`))
	}))
	b.Cleanup(up.Close)
	return up
}

// BenchmarkBareReverseProxy is the baseline for BenchmarkGatewayPipeline:
// the same request through httputil.ReverseProxy with nothing else.
func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, BufferPool: &bufferPool{}}
	b.ReportAllocs()
	for b.Loop() {
		r := req("GET", "/api/contacts/42", "User-Agent", "bench", "Accept", "application/json")
		w := httptest.NewRecorder()
		rp.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkGatewayPipeline(b *testing.B) {
	up := benchUpstream(b)
	c := Config{
		Upstreams: map[string]UpstreamConfig{"crm": {URL: up.URL}},
		Routes:    []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: AuthNone}},
	}
	c.Defaults()
	g, err := New(c, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := req("GET", "/api/contacts/42", "User-Agent", "bench", "Accept", "application/json")
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkIntake measures the stages before forwarding alone.
func BenchmarkIntake(b *testing.B) {
	c := Config{
		Upstreams: map[string]UpstreamConfig{"crm": {URL: "http://127.0.0.1:1"}},
		Routes:    []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: AuthNone}},
	}
	c.Defaults()
	g, err := New(c, Deps{})
	if err != nil {
		b.Fatal(err)
	}
	r := req("GET", "/api/contacts/42?fields=name,email", "User-Agent", "bench", "Accept", "application/json", "Cookie", "a=b")
	b.ReportAllocs()
	for b.Loop() {
		s := newTestScope()
		in, herr := g.intake(r, s)
		if herr != nil {
			b.Fatal(herr)
		}
		if _, herr := g.route(r, s, in); herr != nil {
			b.Fatal(herr)
		}
	}
}
