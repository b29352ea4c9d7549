package crm

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWhoami(t *testing.T) {
	h := newTestServer(t, Config{IdentityHeader: "X-User", RolesHeader: "X-Roles"}).Handler()
	tests := []struct {
		name   string
		method string
		target string
		header http.Header
		body   string
		want   whoamiBody
	}{
		{
			name: "anonymous", method: "GET", target: "/api/whoami",
			want: whoamiBody{User: "anonymous", Headers: http.Header{}, Method: "GET", Path: "/api/whoami",
				RequestURI: "/api/whoami", Query: map[string][]string{}},
		},
		{
			name: "identity, roles and every header value", method: "GET", target: "/api/whoami?a=1&a=2&b=%20x",
			header: http.Header{"X-User": {"alice", "mallory"}, "X-Roles": {"sales,manager"}, "Accept": {"application/json"}},
			want: whoamiBody{User: "alice", Roles: "sales,manager",
				Headers: http.Header{"X-User": {"alice", "mallory"}, "X-Roles": {"sales,manager"}, "Accept": {"application/json"}},
				Method:  "GET", Path: "/api/whoami", RequestURI: "/api/whoami?a=1&a=2&b=%20x",
				Query: map[string][]string{"a": {"1", "2"}, "b": {" x"}}, RawQuery: "a=1&a=2&b=%20x"},
		},
		{
			name: "any method, with a body", method: "PATCH", target: "/api/whoami", body: "hello",
			want: whoamiBody{User: "anonymous", Headers: http.Header{}, Method: "PATCH", Path: "/api/whoami",
				RequestURI: "/api/whoami", Query: map[string][]string{}, ContentLength: 5},
		},
		{
			// Path traversal must reach the echo unredirected, so gateway
			// tests see what was forwarded.
			name: "unclean path is not redirected", method: "GET", target: "/api/whoami/../admin/users",
			want: whoamiBody{User: "anonymous", Headers: http.Header{}, Method: "GET", Path: "/api/whoami/../admin/users",
				RequestURI: "/api/whoami/../admin/users", Query: map[string][]string{}},
		},
		{
			name: "encoded slash keeps its raw path", method: "GET", target: "/api/whoami/a%2Fb",
			want: whoamiBody{User: "anonymous", Headers: http.Header{}, Method: "GET", Path: "/api/whoami/a/b",
				RawPath: "/api/whoami/a%2Fb", RequestURI: "/api/whoami/a%2Fb", Query: map[string][]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req := httptest.NewRequest(tt.method, tt.target, body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %s status = %d, want 200", tt.method, tt.target, rec.Code)
			}
			tt.want.Host, tt.want.RemoteAddr, tt.want.Proto = "example.com", "192.0.2.1:1234", "HTTP/1.1"
			if diff := cmp.Diff(decode[whoamiBody](t, rec), tt.want); diff != "" {
				t.Errorf("%s %s mismatch (-got +want):\n%s", tt.method, tt.target, diff)
			}
		})
	}
}

// Over a real connection, the raw request line reaches whoami untouched.
func TestWhoamiRawRequest(t *testing.T) {
	srv := httptest.NewServer(newTestServer(t, Config{}).Handler())
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const reqLine = "/api/whoami/..%2f..//x?q=%00"
	if _, err := io.WriteString(conn, "GET "+reqLine+" HTTP/1.1\r\nHost: crm.internal\r\nX-CRM-User: bob\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rec := httptest.NewRecorder()
	_, _ = io.Copy(rec, resp.Body)
	got := decode[whoamiBody](t, rec)
	want := whoamiBody{User: "bob", Method: "GET", Path: "/api/whoami/../..//x", RawPath: "/api/whoami/..%2f..//x",
		RequestURI: reqLine, Host: "crm.internal", Proto: "HTTP/1.1", RawQuery: "q=%00", Query: map[string][]string{"q": {"\x00"}}}
	got.Headers, got.RemoteAddr = nil, ""
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("raw request mismatch (-got +want):\n%s", diff)
	}
}

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(newTestServer(t, Config{}).Handler())
	defer srv.Close()

	t.Run("streams chunk by chunk", func(t *testing.T) {
		// Each chunk must come back before the next is sent: an echo that
		// buffered the body would deadlock here until the timeout.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		pr, pw := io.Pipe()
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/echo", pr)
		req.Header.Set("Content-Type", "application/x-ndjson")
		respc := make(chan *http.Response, 1)
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errc <- err
				return
			}
			respc <- resp
		}()
		chunks := []string{`{"n":1}` + "\n", `{"n":2}` + "\n", strings.Repeat("z", 100_000) + "\n"}
		if _, err := io.WriteString(pw, chunks[0]); err != nil {
			t.Fatal(err)
		}
		var resp *http.Response
		select {
		case resp = <-respc:
		case err := <-errc:
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != "application/x-ndjson" {
			t.Errorf("Content-Type = %q, want application/x-ndjson", got)
		}
		total := 0
		for i, c := range chunks {
			if i > 0 {
				if _, err := io.WriteString(pw, c); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, len(c))
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatalf("reading echo of chunk %d: %v", i, err)
			}
			if string(buf) != c {
				t.Fatalf("echo of chunk %d = %.40q, want %.40q", i, buf, c)
			}
			total += len(c)
		}
		pw.Close()
		if rest, _ := io.ReadAll(resp.Body); len(rest) != 0 {
			t.Errorf("trailing echo bytes %q", rest)
		}
		if got, want := resp.Trailer.Get("X-Received-Bytes"), strconv.Itoa(total); got != want {
			t.Errorf("X-Received-Bytes trailer = %q, want %q", got, want)
		}
	})

	tests := []struct {
		name, contentType, body, wantType string
	}{
		{"default content type", "", "raw bytes", "application/octet-stream"},
		{"empty body", "text/plain", "", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/api/echo", strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(got) != tt.body {
				t.Errorf("POST /api/echo = %d %q, want 200 %q", resp.StatusCode, got, tt.body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			if n := resp.Trailer.Get("X-Received-Bytes"); n != strconv.Itoa(len(tt.body)) {
				t.Errorf("X-Received-Bytes = %q, want %d", n, len(tt.body))
			}
		})
	}
}

func TestSlow(t *testing.T) {
	h := newTestServer(t, Config{}).Handler()

	t.Run("sleeps", func(t *testing.T) {
		start := time.Now()
		rec := request{method: "GET", target: "/api/slow?ms=30"}.do(t, h)
		if el := time.Since(start); el < 30*time.Millisecond {
			t.Errorf("GET /api/slow?ms=30 took %v, want at least 30ms", el)
		}
		if diff := cmp.Diff(decode[map[string]int64](t, rec), map[string]int64{"slept_ms": 30}); diff != "" {
			t.Errorf("body mismatch (-got +want):\n%s", diff)
		}
	})

	t.Run("returns when the client leaves", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, "GET", "/api/slow?ms=60000", nil)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("abandoned GET /api/slow took %v, want it to return promptly", el)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("abandoned GET /api/slow wrote %q, want nothing", rec.Body)
		}
	})

	durations := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"default", "", time.Second, false},
		{"zero", "0", 0, false},
		{"some", "1500", 1500 * time.Millisecond, false},
		{"clamped", "600000", 60 * time.Second, false},
		{"overflow clamped", "9223372036854775807", 60 * time.Second, false},
		{"negative", "-1", 0, true},
		{"not a number", "soon", 0, true},
	}
	for _, tt := range durations {
		t.Run("slowDuration/"+tt.name, func(t *testing.T) {
			got, err := slowDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("slowDuration(%q) = %v, %v, want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("bad ms is 400", func(t *testing.T) {
		if rec := (request{method: "GET", target: "/api/slow?ms=-5"}).do(t, h); rec.Code != http.StatusBadRequest {
			t.Errorf("GET /api/slow?ms=-5 status = %d, want 400", rec.Code)
		}
	})
}
