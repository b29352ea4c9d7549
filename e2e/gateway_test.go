package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// whoami is what the sample CRM saw of a request.
type whoami struct {
	User       string              `json:"user"`
	Roles      string              `json:"roles"`
	Headers    map[string][]string `json:"headers"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RequestURI string              `json:"request_uri"`
	Host       string              `json:"host"`
}

func TestGatewayEndToEnd(t *testing.T) {
	d := startDemo(t)

	t.Run("forwards a CRM API call over TLS", func(t *testing.T) {
		res, body := d.get(t, "/api/contacts?per_page=5", "Cookie", d.session(t, "alice"))
		if res.StatusCode != 200 {
			t.Fatalf("GET /api/contacts = %d %s", res.StatusCode, body)
		}
		var list struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 5 {
			t.Fatalf("contacts = %s (%v), want 5 items", body, err)
		}
		for k, want := range map[string]string{
			"Strict-Transport-Security": "max-age=31536000", "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "strict-origin-when-cross-origin",
		} {
			if got := res.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if len(res.Header.Get("X-Request-Id")) != 32 {
			t.Errorf("X-Request-Id = %q, want a generated id", res.Header.Get("X-Request-Id"))
		}
		if res.TLS == nil || res.TLS.Version < 0x0303 {
			t.Errorf("TLS = %+v, want TLS 1.2+", res.TLS)
		}
	})

	t.Run("default deny", func(t *testing.T) {
		for _, p := range []string{"/nothing", "/api/contacts/1/notes", "/api/admin/users/1", "/API/contacts", "/healthz", "/metrics"} {
			res, body := d.get(t, p)
			if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET %s = %d %s, want 404 problem+json", p, res.StatusCode, res.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), `"request_id"`) {
				t.Errorf("GET %s body %s lacks the request id", p, body)
			}
		}
		res, _ := d.do(t, d.client, "PATCH", "/api/contacts/1", nil)
		if res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD, PUT, DELETE" {
			t.Errorf("PATCH = %d Allow %q, want 405 with Allow", res.StatusCode, res.Header.Get("Allow"))
		}
	})

	// An attacker sends the identity headers the CRM trusts, in every
	// spelling a lenient server folds together, plus forwarding headers.
	t.Run("spoofed identity and forwarding headers never reach the CRM", func(t *testing.T) {
		res, body := d.get(t, "/api/whoami",
			"X-CRM-User", "carol", "X_CRM_User", "carol", "x-crm_user", "carol", "X.CRM.User", "carol",
			"X-CRM-Roles", "admin", "X-Forwarded-For", "10.0.0.1", "X-Real-IP", "10.0.0.1", "Forwarded", "for=10.0.0.1",
			"X-Original-URL", "/api/admin/users", "X-Forwarded-Host", "evil.example", "X-Request-Id", "chosen-by-attacker",
			"Cookie", "crmgate_session=stolen; __Host-crmgate=x; theme=dark", "Connection", "X-Trace-Me", "X-Trace-Me", "1")
		if res.StatusCode != 200 {
			t.Fatalf("whoami = %d %s", res.StatusCode, body)
		}
		var w whoami
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatal(err)
		}
		if w.User == "carol" || w.Roles == "admin" {
			t.Errorf("CRM saw identity user=%q roles=%q, want none", w.User, w.Roles)
		}
		for k, v := range w.Headers {
			l := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k))
			switch {
			case strings.HasPrefix(l, "x-crm"), l == "x-original-url", l == "forwarded", l == "x-trace-me":
				t.Errorf("CRM saw %s: %v", k, v)
			case l == "x-forwarded-for" || l == "x-real-ip":
				if !slices.Equal(v, []string{"127.0.0.1"}) {
					t.Errorf("CRM saw %s %v, want the socket address", k, v)
				}
			case l == "x-forwarded-host":
				if v[0] == "evil.example" {
					t.Errorf("CRM saw client-sent %s", k)
				}
			case l == "x-request-id":
				if v[0] == "chosen-by-attacker" {
					t.Errorf("CRM saw client-chosen request id")
				}
			case l == "cookie":
				if !slices.Equal(v, []string{"theme=dark"}) {
					t.Errorf("CRM saw cookies %v, want only theme=dark", v)
				}
			}
		}
	})

	t.Run("duplicated identity header is refused", func(t *testing.T) {
		res, _ := d.get(t, "/api/whoami", "X-CRM-User", "dave", "x-crm-user", "carol")
		if res.StatusCode != 400 {
			t.Errorf("status %d, want 400", res.StatusCode)
		}
	})

	t.Run("upstream receives exactly the routed path", func(t *testing.T) {
		_, body := d.get(t, "/api/whoami?q=%41b")
		var w whoami
		_ = json.Unmarshal(body, &w)
		if w.RequestURI != "/api/whoami?q=%41b" || w.Path != "/api/whoami" {
			t.Errorf("CRM saw %q (%q), want the canonical target", w.RequestURI, w.Path)
		}
	})

	t.Run("http2", func(t *testing.T) {
		res, body := d.do(t, newClient(d.pool, true), "GET", "/api/whoami", nil, "x-crm-user", "carol")
		if res.ProtoMajor != 2 || res.StatusCode != 200 {
			t.Fatalf("proto %s status %d", res.Proto, res.StatusCode)
		}
		var w whoami
		_ = json.Unmarshal(body, &w)
		if w.User == "carol" {
			t.Errorf("identity header passed over HTTP/2")
		}
		res, _ = d.do(t, newClient(d.pool, true), "GET", "/api/contacts/%2e%2e/admin", nil)
		if res.StatusCode != 400 {
			t.Errorf("HTTP/2 traversal = %d, want 400", res.StatusCode)
		}
	})

	t.Run("admin endpoints", func(t *testing.T) {
		c := &http.Client{}
		for path, want := range map[string]string{"/healthz": "ok", "/readyz": `"ready":true`, "/metrics": "crmgate_requests_total"} {
			res, b := d.adminGet(t, path)
			if res.StatusCode != 200 || !strings.Contains(string(b), want) {
				t.Errorf("GET %s = %d, want 200 containing %q", path, res.StatusCode, want)
			}
		}
		res, err := c.Post(d.AdminURL+"/healthz", "text/plain", nil)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 405 {
				t.Errorf("POST /healthz = %d, want 405", res.StatusCode)
			}
		}
	})
}

// Raw requests over TLS: each is a path an attacker hopes the gateway and
// the CRM read differently. Every one is refused before forwarding.
func TestPathNormalisationAttacks(t *testing.T) {
	d := startDemo(t)
	targets := []string{
		"/api/contacts/..%2fadmin/users", "/api/contacts/%2e%2e/admin/users", "/api/contacts/.%2e/admin/users",
		"/api/contacts/../admin/users", "/api/./contacts", "/api/contacts%2f1", "/api/contacts%5c1", "/api\\contacts",
		"/api/contacts/1;jsessionid=x", "/api/contacts/..;/admin/users", "/api/contacts/%252e%252e/admin",
		"/api/contacts/1%00.json", "/api/contacts/1%23x", "/api//contacts", "/api/contacts/%c0%ae%c0%ae/admin",
		"/api/contacts/%ff", "/api/contacts/%C3%A9", "/api/contacts?x=%00", "/api/contacts?a=1;b=2",
		"http://localhost/api/admin/users", "*",
	}
	for _, tgt := range targets {
		t.Run(tgt, func(t *testing.T) {
			reply := d.raw(t, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", tgt))
			if st := statuses(reply); len(st) != 1 || st[0] != 400 {
				t.Errorf("GET %s = %v, want [400]\n%s", tgt, st, tail(reply, 300))
			}
		})
	}
}

// Request smuggling attempts on raw HTTP/1.1 connections: ambiguous framing
// is refused with 400 and the connection is closed, so no bytes of the
// attack are read as a second request.
func TestSmugglingAttacks(t *testing.T) {
	d := startDemo(t)
	get := "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
	smuggled := "GET /api/admin/users HTTP/1.1\r\nHost: localhost\r\n\r\n"
	tests := []struct {
		name    string
		payload string
		want    []int
	}{
		{"CL.TE", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}},
		{"TE.CL", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{400}},
		{"obfuscated TE", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", []int{400}},
		{"TE list", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", []int{400}},
		{"TE space before colon", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", []int{400}},
		{"duplicate CL", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", []int{400}},
		{"bare LF in chunk line", "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n", []int{400}},
		{"bare LF in head", "GET /api/contacts/1 HTTP/1.1\nHost: localhost\n\n", []int{400}},
		{"obs-fold", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n X-CRM-User: carol\r\n\r\n", []int{400}},
		{"duplicate Host", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nHost: evil\r\n\r\n", []int{400}},
		{"good then smuggled", get + "POST /api/contacts HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{200, 400}},
		{"pipelined good", get + get + "GET /api/contacts/2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", []int{200, 200, 200}},
		{"h2c upgrade", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n", []int{400}},
		{"HTTP/2 preface on HTTP/1.1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", []int{400}},
		{"HTTP/0.9", "GET /api/contacts/1\r\n\r\n", []int{400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Signed in as the admin: a smuggled request would be answered.
			reply := d.raw(t, withCookie(tt.payload, d.session(t, "carol")))
			if got := statuses(reply); !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v\n%s", got, tt.want, tail(reply, 400))
			}
			if strings.Contains(reply, `"username"`) {
				t.Errorf("the smuggled admin request was answered")
			}
		})
	}
}
