package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// seen is what the sample CRM reports at /api/whoami.
type seen struct {
	User       string              `json:"user"`
	Roles      string              `json:"roles"`
	Headers    map[string][]string `json:"headers"`
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RequestURI string              `json:"request_uri"`
	Query      map[string][]string `json:"query"`
	Host       string              `json:"host"`
}

// attackRaw sends payload on a fresh HTTP/1.1 TLS connection while reading
// what comes back, until the gateway closes the connection or 5 seconds
// pass. Unlike d.raw it tolerates the gateway closing before the payload is
// written, which is the point of several attacks.
func attackRaw(t *testing.T, d *demo, payload string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: d.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = io.WriteString(conn, payload) }()
	b, _ := io.ReadAll(conn)
	return string(b)
}

// firstResponse parses the first HTTP/1.1 response of a raw reply.
func firstResponse(t *testing.T, reply string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.ReadResponse(bufio.NewReader(strings.NewReader(reply)), nil)
	if err != nil {
		t.Fatalf("no response in %q: %v", tail(reply, 300), err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, b
}

func decodeSeen(t *testing.T, body []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("whoami body %q: %v", body, err)
	}
	return s
}

// gatewayCookie reports a cookie of the gateway (prefix crmgate, also with
// __Host- and __Secure-) in a Cookie header value.
func gatewayCookie(v string) bool {
	for _, p := range strings.Split(v, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		n := strings.ToLower(strings.TrimSpace(name))
		n = strings.TrimPrefix(strings.TrimPrefix(n, "__host-"), "__secure-")
		if strings.HasPrefix(n, "crmgate") {
			return true
		}
	}
	return false
}

func TestAttackRawHTTP1(t *testing.T) {
	d := startDemo(t)
	cookie := d.session(t, "alice")
	const closeConn = "Connection: close\r\n"
	get := func(path, headers string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + headers + closeConn + "\r\n"
	}
	tests := []struct {
		name    string
		payload string
		want    []int
		not     string // must not appear in the reply
	}{
		{"missing Host on HTTP/1.1", "GET /api/contacts/1 HTTP/1.1\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"HTTP/1.0 without Host", "GET /api/contacts/1 HTTP/1.0\r\n\r\n", []int{400}, ""},
		{"absolute-form target naming another host", "GET https://evil.example/api/admin/users HTTP/1.1\r\nHost: localhost\r\n" + closeConn + "\r\n", []int{400}, `"username"`},
		{"Host with userinfo", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost@evil.example\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"Host with a path", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost/api/admin\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"Host with a trailing dot", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost.\r\n" + closeConn + "\r\n", []int{200}, ""},
		{"Host in upper case", "GET /api/contacts/1 HTTP/1.1\r\nHost: LOCALHOST\r\n" + closeConn + "\r\n", []int{200}, ""},
		{"Host as an IPv6 literal with port", "GET /api/contacts/1 HTTP/1.1\r\nHost: [::1]:443\r\n" + closeConn + "\r\n", []int{200}, ""},
		{"Host with a non-numeric port", "GET /api/contacts/1 HTTP/1.1\r\nHost: localhost:https\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"empty Host", "GET /api/contacts/1 HTTP/1.1\r\nHost: \r\n" + closeConn + "\r\n", []int{400}, ""},
		// RFC 9110 §4.2.1: an empty host must be rejected.
		{"Host with a port and no name", "GET /api/contacts/1 HTTP/1.1\r\nHost: :443\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"Host with a Unicode look-alike", "GET /api/contacts/1 HTTP/1.1\r\nHost: l\xd0\xbecalhost\r\n" + closeConn + "\r\n", []int{400}, ""},

		{"lower-case method", "get /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\n" + closeConn + "\r\n", []int{405}, ""},
		{"tab after the method", "GET\t/api/contacts/1 HTTP/1.1\r\nHost: localhost\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"HTTP/1.2", "GET /api/contacts/1 HTTP/1.2\r\nHost: localhost\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"lower-case version", "GET /api/contacts/1 http/1.1\r\nHost: localhost\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"CONNECT", "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n" + closeConn + "\r\n", []int{405}, ""},
		// Cross-site tracing: the request, cookies included, must never be
		// echoed back.
		{"TRACE with Max-Forwards", "TRACE /api/whoami HTTP/1.1\r\nHost: localhost\r\nMax-Forwards: 0\r\nCookie: xst-marker=1\r\n" + closeConn + "\r\n", []int{405}, "xst-marker"},
		{"method override to TRACE", "POST /api/whoami?_method=TRACE HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n" + closeConn + "\r\n", []int{400}, ""},
		{"override header to CONNECT", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-HTTP-Method-Override: CONNECT\r\nContent-Length: 0\r\n" + closeConn + "\r\n", []int{400}, ""},

		{"negative Content-Length", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", []int{400}, ""},
		{"Content-Length with a plus sign", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello", []int{400}, ""},
		{"hexadecimal Content-Length", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0x5\r\n\r\nhello", []int{400}, ""},
		{"Content-Length list", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nhello", []int{400}, ""},
		{"Content-Length overflow", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999999999\r\n\r\nhello", []int{400}, ""},
		{"chunked GET, then a pipelined GET", "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + get("/api/contacts/1", ""), []int{200, 200}, ""},
		{"huge chunk extension", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;" + strings.Repeat("x", 8<<10) + "\r\nhello\r\n0\r\n\r\n", []int{400}, ""},
		{"chunk size overflow", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nhello\r\n0\r\n\r\n", []int{400}, ""},
		{"chunk size with 0x", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", []int{400}, ""},
		{"negative chunk size", "POST /api/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", []int{400}, ""},
		{"framing headers in the trailer, then a pipelined GET", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: identity\r\n\r\n" + get("/api/contacts/1", ""), []int{200, 200}, ""},
		// The body is refused before it is asked for: no 100 Continue.
		{"Expect: 100-continue with an oversized body", "PUT /api/contacts/1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\nExpect: 100-continue\r\n\r\n", []int{413}, "100 Continue"},
		{"form override with an encoded name", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16\r\n" + closeConn + "\r\n%5Fmethod=DELETE", []int{400}, ""},
		{"form media type followed by a comma", "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded, text/plain\r\nContent-Length: 14\r\n" + closeConn + "\r\n_method=DELETE", []int{400}, ""},

		{"identity header name with a Unicode look-alike", get("/api/whoami", "X-CRM-Us\xd0\xb5r: carol\r\n"), []int{400}, ""},
		{"space before the colon", get("/api/whoami", "X-CRM-User : carol\r\n"), []int{400}, ""},
		{"tab before the colon", get("/api/whoami", "X-CRM-User\t: carol\r\n"), []int{400}, ""},
		{"bare CR in a header value", get("/api/whoami", "X-Request-Id: abcdefgh\rSet-Cookie: crmgate_session=x\r\n"), []int{400}, "crmgate_session"},
		{"NUL in a header value", get("/api/whoami", "X-Request-Id: abcdefgh\x00x\r\n"), []int{400}, ""},
		// CGI and PHP read both as HTTP_X_API_KEY.
		{"X-API-Key spelled twice", get("/api/whoami", "X-API-Key: valid\r\nX_API_Key: other\r\n"), []int{400}, ""},

		// The framing guard stops checking after a request with Upgrade;
		// unless the answer closes the connection, the next request is
		// read unchecked (here with bare LF line ends, which it refuses).
		{"Upgrade without Connection: upgrade, then an unchecked request", "GET /api/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\nGET /api/contacts/1 HTTP/1.1\nHost: localhost\nConnection: close\n\n", []int{426}, ""},
		{"Upgrade refused by the CRM, then a pipelined request", "GET /api/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + get("/api/contacts/1", ""), []int{400}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reply := attackRaw(t, d, withCookie(tt.payload, cookie))
			if got := statuses(reply); !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v\n%s", got, tt.want, tail(reply, 400))
			}
			if tt.not != "" && strings.Contains(reply, tt.not) {
				t.Errorf("reply contains %q:\n%s", tt.not, tail(reply, 400))
			}
		})
	}
}

func TestAttackWhatTheCRMSees(t *testing.T) {
	d := startDemo(t)

	// The client names the gateway's own headers in Connection, hoping
	// the proxy removes them after the gateway set them.
	t.Run("Connection cannot remove the gateway's headers", func(t *testing.T) {
		res, body := d.get(t, "/api/whoami",
			"Connection", "x-crm-user, X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id",
			"X-CRM-User", "carol")
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		s := decodeSeen(t, body)
		if s.User != "anonymous" {
			t.Errorf("CRM saw user %q", s.User)
		}
		want := map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "https",
			"X-Request-Id": res.Header.Get("X-Request-Id"),
		}
		// The demo's routes serve any host, so the gateway vouches for
		// none: X-Forwarded-Host is not sent at all.
		if got := s.Headers["X-Forwarded-Host"]; len(got) != 0 {
			t.Errorf("CRM saw X-Forwarded-Host %q on a route for any host", got)
		}
		for k, v := range want {
			if got := s.Headers[k]; len(got) != 1 || got[0] != v {
				t.Errorf("CRM saw %s %q, want %q", k, got, v)
			}
		}
	})

	t.Run("client forwarding and proxy headers", func(t *testing.T) {
		_, body := d.get(t, "/api/whoami",
			"X-Forwarded-User", "admin", "X-Forwarded-Email", "admin@example.com", "X-Forwarded-Groups", "admins",
			"X-Forwarded-Protocol", "http", "X-Forwarded-Url", "/api/admin/users", "Proxy", "http://127.0.0.1:1",
			"X-Forwarded-Host", "evil.example", "X_Forwarded_For", "10.0.0.1")
		s := decodeSeen(t, body)
		own := map[string]bool{"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-host": true}
		for k, v := range s.Headers {
			n := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k))
			if strings.HasPrefix(n, "x-forwarded-") && !own[n] || n == "proxy" {
				t.Errorf("CRM saw client-sent %s %q", k, v)
			}
			if strings.Contains(strings.Join(v, ","), "evil.example") || strings.Contains(strings.Join(v, ","), "10.0.0.1") {
				t.Errorf("CRM saw %s %q", k, v)
			}
		}
	})

	t.Run("identity in a chunked trailer", func(t *testing.T) {
		reply := attackRaw(t, d, "POST /api/whoami HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTrailer: X-CRM-User, X-CRM-Roles\r\n"+
			"Content-Type: text/plain\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-CRM-User: carol\r\nX-CRM-Roles: admin\r\n\r\n")
		res, body := firstResponse(t, reply)
		if res.StatusCode != 200 {
			t.Fatalf("status %d: %s", res.StatusCode, body)
		}
		s := decodeSeen(t, body)
		if s.User != "anonymous" || s.Roles != "" || strings.Contains(string(body), "carol") {
			t.Errorf("CRM saw user %q roles %q: %s", s.User, s.Roles, body)
		}
	})

	cookies := []struct {
		name, headers string
	}{
		{"gateway cookie in a second Cookie header", "Cookie: theme=dark\r\nCookie: crmgate_session=stolen\r\n"},
		{"empty Cookie header before the gateway cookie", "Cookie: \r\nCookie: crmgate_session=stolen; theme=dark\r\n"},
		{"__Host- gateway cookie in odd case", "Cookie: __HOST-CrmGate=stolen; theme=dark\r\n"},
	}
	for _, tt := range cookies {
		t.Run(tt.name, func(t *testing.T) {
			reply := attackRaw(t, d, "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\n"+tt.headers+"Connection: close\r\n\r\n")
			res, body := firstResponse(t, reply)
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			s := decodeSeen(t, body)
			for _, v := range s.Headers["Cookie"] {
				if gatewayCookie(v) {
					t.Errorf("CRM saw the gateway's cookie: Cookie %q", s.Headers["Cookie"])
				}
			}
			if got := strings.Join(s.Headers["Cookie"], "; "); !strings.Contains(got, "theme=dark") {
				t.Errorf("CRM saw Cookie %q, want theme=dark kept", s.Headers["Cookie"])
			}
		})
	}

	t.Run("query override spellings", func(t *testing.T) {
		for _, q := range []string{"_method=DELETE", "%5Fmethod=DELETE", "_%6Dethod=DELETE"} {
			res, body := d.do(t, d.client, "POST", "/api/whoami?"+q, nil)
			if res.StatusCode == 400 {
				continue
			}
			s := decodeSeen(t, body)
			if v, ok := s.Query["_method"]; ok || s.Method != "POST" {
				t.Errorf("POST ?%s: CRM saw %s with _method=%q, want the override removed", q, s.Method, v)
			}
		}
	})

	// A URL the gateway builds must never use the client's forwarding
	// headers (web cache poisoning, password-reset link poisoning).
	t.Run("X-Forwarded-Host never comes back", func(t *testing.T) {
		for _, r := range []struct{ method, path string }{
			{"GET", "/api/whoami"}, {"GET", "/nothing"}, {"PATCH", "/api/contacts/1"}, {"GET", "/api/contacts/%2e%2e/admin"}, {"GET", "/api/ws"},
		} {
			res, body := d.do(t, d.client, r.method, r.path, nil,
				"X-Forwarded-Host", "evil.example", "Forwarded", "host=evil.example;proto=http", "X-Forwarded-Server", "evil.example",
				"X-Host", "evil.example", "X-Original-URL", "https://evil.example/", "Accept", "text/html")
			for k, v := range res.Header {
				if strings.Contains(strings.Join(v, ","), "evil.example") {
					t.Errorf("%s %s: response %s = %q", r.method, r.path, k, v)
				}
			}
			if bytes.Contains(body, []byte("evil.example")) {
				t.Errorf("%s %s: body reflects the client's host: %s", r.method, r.path, body)
			}
		}
	})

	t.Run("request id from an untrusted client", func(t *testing.T) {
		res, body := d.get(t, "/api/whoami", "X-Request-Id", "attacker-chosen-123456")
		id := res.Header.Get("X-Request-Id")
		s := decodeSeen(t, body)
		if id == "attacker-chosen-123456" || len(id) != 32 || strings.Join(s.Headers["X-Request-Id"], ",") != id {
			t.Errorf("response id %q, CRM id %q, want one generated id", id, s.Headers["X-Request-Id"])
		}
	})

	t.Run("1 MiB request id", func(t *testing.T) {
		marker := strings.Repeat("rid", 350<<10)
		reply := attackRaw(t, d, "GET /api/whoami HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: "+marker+"\r\nConnection: close\r\n\r\n")
		for _, st := range statuses(reply) {
			if st < 400 {
				t.Errorf("status %d, want 431 or 400", st)
			}
		}
		if strings.Contains(reply, "ridridridrid") {
			t.Errorf("reply echoes the request id")
		}
	})
}

// h2Reply is how the gateway answered one raw HTTP/2 request.
type h2Reply struct {
	status int
	// refused reports a stream or connection error (RST_STREAM, GOAWAY or
	// a closed connection) instead of a response.
	refused bool
	code    http2.ErrCode
	header  http.Header
	body    []byte
}

// h2Request sends one request on stream 1 of a fresh HTTP/2 connection,
// with header fields exactly as given (pseudo-headers included), an
// optional body and optional trailer fields.
func h2Request(t *testing.T, d *demo, fields [][2]string, body string, trailers [][2]string) h2Reply {
	t.Helper()
	conn, err := tls.Dial("tcp", d.addr, &tls.Config{RootCAs: d.pool, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = fr.WriteSettings()
	writeBlock := func(fs [][2]string, endStream bool) {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for _, f := range fs {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		const maxFrame = 16384
		block := b.Bytes()
		first := block[:min(len(block), maxFrame)]
		rest := block[len(first):]
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0})
		for len(rest) > 0 {
			n := min(len(rest), maxFrame)
			_ = fr.WriteContinuation(1, n == len(rest), rest[:n])
			rest = rest[n:]
		}
	}
	writeBlock(fields, body == "" && trailers == nil)
	if body != "" {
		_ = fr.WriteData(1, trailers == nil, []byte(body))
	}
	if trailers != nil {
		writeBlock(trailers, true)
	}
	var r h2Reply
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			r.refused = r.status == 0
			return r
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			if r.status == 0 {
				fmt.Sscan(f.PseudoValue("status"), &r.status)
				r.header = http.Header{}
				for _, hf := range f.RegularFields() {
					r.header.Add(hf.Name, hf.Value)
				}
			}
			if f.StreamEnded() {
				return r
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				r.body = append(r.body, f.Data()...)
				if f.StreamEnded() {
					return r
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				r.refused, r.code = true, f.ErrCode
				return r
			}
		case *http2.GoAwayFrame:
			r.refused, r.code = true, f.ErrCode
			return r
		}
	}
}

func TestAttackHTTP2(t *testing.T) {
	d := startDemo(t)
	authority := strings.TrimPrefix(d.GatewayURL, "https://")
	req := func(method, path string, extra ...[2]string) [][2]string {
		return append([][2]string{{":method", method}, {":scheme", "https"}, {":authority", authority}, {":path", path}}, extra...)
	}
	anonymous := func(t *testing.T, r h2Reply) {
		t.Helper()
		s := decodeSeen(t, r.body)
		if s.User != "anonymous" || s.Roles != "" {
			t.Errorf("CRM saw user %q roles %q", s.User, s.Roles)
		}
		for k := range s.Headers {
			if n := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(k)); strings.HasPrefix(n, "x-crm") {
				t.Errorf("CRM saw %s", k)
			}
		}
	}
	tests := []struct {
		name     string
		fields   [][2]string
		body     string
		trailers [][2]string
		want     []int // acceptable statuses
		answer   bool  // a refused stream is a failure: the request is legitimate HTTP/2
		ok       func(*testing.T, h2Reply)
	}{
		{name: ":path with dot segments", fields: req("GET", "/api/contacts/../admin/users"), want: []int{400}},
		{name: ":path with encoded dot segments", fields: req("GET", "/api/contacts/%2E%2e/admin/users"), want: []int{400}},
		{name: ":path in absolute form", fields: req("GET", "https://evil.example/api/admin/users"), want: []int{400}},
		{name: ":path asterisk for GET", fields: req("GET", "*"), want: []int{400}},
		{name: ":path without a leading slash", fields: req("GET", "api/contacts/1"), want: []int{400}},
		{name: ":path with a fragment", fields: req("GET", "/api/contacts/1#x"), want: []int{400}},
		{name: ":authority and host disagree", fields: req("GET", "/api/contacts/1", [2]string{"host", "evil.example"}), want: []int{400}},
		{name: "two host fields", fields: req("GET", "/api/contacts/1", [2]string{"host", authority}, [2]string{"host", "evil.example"}), want: []int{400}},
		{name: "userinfo in :authority", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "evil.example@" + authority}, {":path", "/api/contacts/1"}}, want: []int{400}},
		{name: "empty :authority and no host", fields: [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", ""}, {":path", "/api/contacts/1"}}, want: []int{400}},
		{name: "CONNECT", fields: [][2]string{{":method", "CONNECT"}, {":authority", "localhost:443"}}, want: []int{405}},
		{name: "extended CONNECT to the WebSocket route", fields: req("CONNECT", "/api/ws", [2]string{":protocol", "websocket"}, [2]string{"sec-websocket-version", "13"}), want: []int{405}},
		{name: "lower-case method", fields: req("get", "/api/contacts/1"), want: []int{405}},
		{name: "TRACE", fields: req("TRACE", "/api/whoami", [2]string{"cookie", "xst-marker=1"}), want: []int{405}},
		{name: "upper-case field name", fields: req("GET", "/api/whoami", [2]string{"X-CRM-User", "carol"}), want: []int{200}, ok: anonymous},
		{name: "connection-specific field", fields: req("GET", "/api/whoami", [2]string{"connection", "x-crm-user"}, [2]string{"x-crm-user", "carol"}), want: []int{400}},
		{name: "upgrade field", fields: req("GET", "/api/ws", [2]string{"upgrade", "websocket"}), want: []int{400}},
		{name: "transfer-encoding field", fields: req("POST", "/api/whoami", [2]string{"transfer-encoding", "chunked"}), body: "0\r\n\r\n", want: []int{400}},
		{name: "CR LF in a field value", fields: req("GET", "/api/whoami", [2]string{"x-request-id", "abcdefgh\r\nset-cookie: crmgate_session=x"}), want: []int{400}},
		{name: "header block over the limit", fields: req("GET", "/api/whoami", [2]string{"x-big", strings.Repeat("a", 128<<10)}), want: []int{431}},
		{name: "content-length shorter than the data", fields: req("POST", "/api/whoami", [2]string{"content-length", "2"}), body: "0123456789", want: []int{400}},
		{name: "lower-case identity header with underscores", fields: req("GET", "/api/whoami", [2]string{"x_crm_user", "carol"}, [2]string{"x-crm-roles", "admin"}), want: []int{200}, answer: true, ok: anonymous},
		{name: "identity in trailers", fields: req("POST", "/api/whoami", [2]string{"trailer", "x-crm-user"}), body: "hello",
			trailers: [][2]string{{"x-crm-user", "carol"}, {"x-crm-roles", "admin"}}, want: []int{200}, answer: true, ok: anonymous},
		{name: "cookie split across fields", fields: req("GET", "/api/whoami", [2]string{"cookie", "theme=dark"}, [2]string{"cookie", "crmgate_session=stolen"}, [2]string{"cookie", "__Host-crmgate=x"}),
			want: []int{200}, answer: true, ok: func(t *testing.T, r h2Reply) {
				if s := decodeSeen(t, r.body); !slices.Equal(s.Headers["Cookie"], []string{"theme=dark"}) {
					t.Errorf("CRM saw Cookie %q, want [theme=dark]", s.Headers["Cookie"])
				}
			}},
		{name: "empty cookie field before the gateway cookie", fields: req("GET", "/api/whoami", [2]string{"cookie", ""}, [2]string{"cookie", "crmgate_session=stolen"}),
			want: []int{200}, answer: true, ok: func(t *testing.T, r h2Reply) {
				for _, v := range decodeSeen(t, r.body).Headers["Cookie"] {
					if gatewayCookie(v) {
						t.Errorf("CRM saw Cookie %q", v)
					}
				}
			}},
		{name: ":scheme http on a TLS connection", fields: [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", "/api/whoami"}},
			want: []int{200}, answer: true, ok: func(t *testing.T, r h2Reply) {
				if s := decodeSeen(t, r.body); strings.Join(s.Headers["X-Forwarded-Proto"], ",") != "https" {
					t.Errorf("CRM saw X-Forwarded-Proto %q, want https", s.Headers["X-Forwarded-Proto"])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := h2Request(t, d, tt.fields, tt.body, tt.trailers)
			switch {
			case r.refused && !tt.answer:
				// A stream or connection error: nothing was forwarded.
			case r.refused:
				t.Errorf("stream refused (%v), want %v", r.code, tt.want)
			case !slices.Contains(tt.want, r.status):
				t.Errorf("status %d, want %v or a refused stream\n%s", r.status, tt.want, r.body)
			case tt.ok != nil && r.status == 200:
				tt.ok(t, r)
			}
			if bytes.Contains(r.body, []byte("xst-marker")) {
				t.Errorf("the request was echoed: %s", r.body)
			}
		})
	}
}

// Unknown methods and unrouted paths must not create metric series: an
// attacker would otherwise grow the gateway's memory and the monitoring
// bill one label value at a time.
func TestAttackMetricsCardinality(t *testing.T) {
	d := startDemo(t)
	for i := range 5 {
		payload := fmt.Sprintf("FOOBAR%d /zz-unrouted-%d HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", i, i)
		if st := statuses(attackRaw(t, d, payload)); !slices.Equal(st, []int{405}) {
			t.Errorf("FOOBAR%d = %v, want [405]", i, st)
		}
		res, _ := d.get(t, fmt.Sprintf("/zz-unrouted-%d", i))
		if res.StatusCode != 404 {
			t.Errorf("unrouted path = %d, want 404", res.StatusCode)
		}
	}
	_, b := d.adminGet(t, "/metrics")
	for _, s := range []string{"FOOBAR", "zz-unrouted"} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("metrics contain client-chosen %q", s)
		}
	}
}

// Connections that never start TLS, or finish it and then idle, must not
// stop the gateway from serving others.
func TestAttackIdleConnections(t *testing.T) {
	d := startDemo(t)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	for i := range 300 {
		wg.Go(func() {
			var c net.Conn
			var err error
			if i%6 == 0 {
				c, err = tls.Dial("tcp", d.addr, &tls.Config{RootCAs: d.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			} else {
				c, err = net.Dial("tcp", d.addr)
			}
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if len(conns) < 250 {
		t.Fatalf("only %d idle connections opened", len(conns))
	}
	cookie := d.session(t, "alice")
	start := time.Now()
	res, _ := d.get(t, "/api/contacts/1", "Cookie", cookie)
	if res.StatusCode != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("with %d idle connections: status %d after %s, want 200 promptly", len(conns), res.StatusCode, time.Since(start))
	}
	r2 := h2Request(t, d, [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/api/contacts/1"}, {"cookie", cookie}}, "", nil)
	if r2.status != 200 {
		t.Errorf("HTTP/2 with %d idle connections: status %d (refused %v)", len(conns), r2.status, r2.refused)
	}
}
