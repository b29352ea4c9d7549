package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/ratelimit"
)

// The load balancer of these tests, and any other client. Every 127/8
// address is the loopback interface's, so a test can connect from either.
const (
	balancerIP = "127.0.0.1"
	otherIP    = "127.0.0.2"
)

// syncBuffer is a bytes.Buffer that the server's goroutines may write
// while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ppRig is a gateway whose HTTPS listener takes PROXY headers from
// balancerIP.
type ppRig struct {
	rs   *runningServer
	reg  *prometheus.Registry
	aud  *fakeAuditor
	logs *syncBuffer
}

func startPP(t testing.TB, upstreamURL string, mod func(*Config), d Deps) *ppRig {
	t.Helper()
	r := &ppRig{reg: prometheus.NewRegistry(), aud: &fakeAuditor{}, logs: &syncBuffer{}}
	d.Metrics, d.Auditor = r.reg, r.aud
	d.Log = slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.rs = startServerWith(t, upstreamURL, func(c *Config) {
		c.Server.ProxyProtocol = ProxyProtocolConfig{From: []string{balancerIP}, HeaderTimeout: 300 * time.Millisecond}
		if mod != nil {
			mod(c)
		}
	}, d)
	return r
}

// dial opens a TCP connection to the gateway from src.
func (r *ppRig) dial(ctx context.Context, src string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", r.rs.srv.Addr().String())
}

func (r *ppRig) mustDial(t *testing.T, src string) net.Conn {
	t.Helper()
	c, err := r.dial(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client returns an HTTP client whose every connection comes from src and
// opens with header (nothing when nil), written in pieces of chunk bytes
// 10ms apart (0: in one write).
func (r *ppRig) client(src string, header []byte, h2 bool, chunk int) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, err := r.dial(ctx, src)
			if err != nil {
				return nil, err
			}
			for b := header; len(b) > 0; {
				n := len(b)
				if chunk > 0 {
					n = min(n, chunk)
				}
				if _, err := c.Write(b[:n]); err != nil {
					c.Close()
					return nil, err
				}
				if b = b[n:]; len(b) > 0 {
					time.Sleep(10 * time.Millisecond)
				}
			}
			return c, nil
		},
		TLSClientConfig:   &tls.Config{RootCAs: r.rs.pool, ServerName: "localhost"},
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get requests path with c and returns the status, what the upstream saw
// and the protocol.
func (r *ppRig) get(t *testing.T, c *http.Client, path string) (int, echoed, string) {
	t.Helper()
	res, err := c.Get(r.rs.url(path))
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	var e echoed
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == 200 {
		_ = json.Unmarshal(b, &e)
	}
	return res.StatusCode, e, res.Proto
}

// lastRecord waits for the audit record of the request with id.
func (r *ppRig) lastRecord(t *testing.T, id string) AuditRecord {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		recs, _ := r.aud.take()
		for _, rec := range recs {
			if rec.Scope.ID == id {
				return rec
			}
		}
	}
	t.Fatalf("no audit record of request %s", id)
	return AuditRecord{}
}

// logLine is the request log line of the request with id.
func (r *ppRig) logLine(id string) string {
	for _, l := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, fmt.Sprintf(`"request_id":%q`, id)) {
			return l
		}
	}
	return ""
}

// metrics returns the gateway's crmgate_proxy_protocol_ and
// crmgate_connections_open series as name{label=value,...}.
func (r *ppRig) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "crmgate_proxy_protocol_") && mf.GetName() != "crmgate_connections_open" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			if m.GetGauge() != nil {
				got[name] = m.GetGauge().GetValue()
			} else {
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	return got
}

func refusedSeries(reason string) string {
	return "crmgate_proxy_protocol_refused_total{reason=" + reason + "}"
}

// header is a balancer's PROXY header for the TCP connection of client
// (address:port) to the gateway.
func header(t testing.TB, version byte, client string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client))
	dst := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443}
	h := proxyproto.HeaderProxyFromAddrs(version, src, dst)
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v2 assembles a version 2 header by hand, for headers the library would
// not write: command and family bytes, then the length and body.
func v2(cmd, family byte, length uint16, body []byte) []byte {
	b := append([]byte{}, proxyproto.SIGV2...)
	b = append(b, cmd, family)
	b = binary.BigEndian.AppendUint16(b, length)
	return append(b, body...)
}

// v4Block is a TCP over IPv4 address block: 203.0.113.9:51000 to
// 198.51.100.1:443.
var v4Block = []byte{203, 0, 113, 9, 198, 51, 100, 1, 0xC7, 0x38, 0x01, 0xBB}

// v6MappedBlock is a TCP over IPv6 address block: [::ffff:203.0.113.9]:51000
// to [2001:db8::1]:443.
var v6MappedBlock = []byte{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 203, 0, 113, 9,
	0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0xC7, 0x38, 0x01, 0xBB,
}

var localV2 = v2(0x20, 0x00, 0, nil)

func TestProxyProtocolClientAddress(t *testing.T) {
	r := startPP(t, echoUpstream(t).URL, func(c *Config) {
		// A header over several writes must arrive within the timeout.
		c.Server.ProxyProtocol.HeaderTimeout = 2 * time.Second
	}, Deps{})
	tlvs := []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("crm.example.com")}, {Type: proxyproto.PP2_TYPE_NOOP, Value: make([]byte, 64)}}
	tests := []struct {
		name   string
		header []byte
		h2     bool
		chunk  int
		want   string
	}{
		{"v1", header(t, 1, "203.0.113.9:51000"), false, 0, "203.0.113.9"},
		{"v2", header(t, 2, "203.0.113.9:51000"), false, 0, "203.0.113.9"},
		{"v2 over HTTP/2", header(t, 2, "203.0.113.9:51000"), true, 0, "203.0.113.9"},
		{"v1 IPv6", header(t, 1, "[2001:db8::9]:51000"), false, 0, "2001:db8::9"},
		{"v2 IPv6", header(t, 2, "[2001:db8::9]:51000"), true, 0, "2001:db8::9"},
		{"v2 with TLVs", header(t, 2, "203.0.113.9:51000", tlvs...), false, 0, "203.0.113.9"},
		{"v2 split over several writes", header(t, 2, "203.0.113.9:51000", tlvs...), false, 7, "203.0.113.9"},
		{"v2 byte by byte", header(t, 2, "203.0.113.9:51000"), false, 1, "203.0.113.9"},
		// A dual-stack balancer names an IPv4 client in an IPv6 header.
		{"v2 IPv4-mapped IPv6", v2(0x21, 0x21, 36, v6MappedBlock), false, 0, "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.client(balancerIP, tt.header, tt.h2, tt.chunk).Get(r.rs.url("/api/contacts"))
			if err != nil {
				t.Fatal(err)
			}
			var e echoed
			_ = json.NewDecoder(res.Body).Decode(&e)
			res.Body.Close()
			if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[tt.h2]; res.StatusCode != 200 || res.Proto != wantProto {
				t.Fatalf("GET = %d %s, want 200 %s", res.StatusCode, res.Proto, wantProto)
			}
			if xff, real := e.Header.Get("X-Forwarded-For"), e.Header.Get("X-Real-Ip"); xff != tt.want || real != tt.want {
				t.Errorf("upstream saw X-Forwarded-For %q, X-Real-Ip %q, want %q", xff, real, tt.want)
			}
			rec := r.lastRecord(t, res.Header.Get("X-Request-Id"))
			if got := rec.Scope.ClientIP.String(); got != tt.want {
				t.Errorf("audit client = %s, want %s", got, tt.want)
			}
			if line := r.logLine(res.Header.Get("X-Request-Id")); !strings.Contains(line, fmt.Sprintf(`"client_ip":%q`, tt.want)) {
				t.Errorf("request log line %s, want client_ip %s", line, tt.want)
			}
		})
	}
	m := r.metrics(t)
	if m["crmgate_proxy_protocol_headers_total{command=proxy,version=1}"] != 2 || m["crmgate_proxy_protocol_headers_total{command=proxy,version=2}"] != 7 {
		t.Errorf("header metrics = %v, want 2 v1 and 7 v2", m)
	}
	for _, reason := range []string{refusedUntrusted, refusedMissing, refusedMalformed, refusedTimeout} {
		if v, ok := m[refusedSeries(reason)]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0 from the start", refusedSeries(reason), v, ok)
		}
	}
}

// A LOCAL connection is the balancer's own (a health check): it is served
// with the balancer's address.
func TestProxyProtocolLocal(t *testing.T) {
	r := startPP(t, echoUpstream(t).URL, nil, Deps{})
	for name, h := range map[string][]byte{"v2 LOCAL": localV2, "v1 UNKNOWN": []byte("PROXY UNKNOWN\r\n")} {
		t.Run(name, func(t *testing.T) {
			st, e, _ := r.get(t, r.client(balancerIP, h, false, 0), "/api/contacts")
			if st != 200 || e.Header.Get("X-Forwarded-For") != balancerIP {
				t.Errorf("GET = %d, client %q, want 200 from the balancer's own address %s", st, e.Header.Get("X-Forwarded-For"), balancerIP)
			}
		})
	}
	if m := r.metrics(t); m["crmgate_proxy_protocol_headers_total{command=local,version=1}"] != 1 || m["crmgate_proxy_protocol_headers_total{command=local,version=2}"] != 1 {
		t.Errorf("header metrics = %v, want one LOCAL of each version", m)
	}
}

// Per-address rate limits and route IP lists see the client the balancer
// names, not the balancer: one client's spent allowance is not another's.
func TestProxyProtocolLimitsAndIPLists(t *testing.T) {
	rl := &ratelimit.Config{Tiers: map[string]ratelimit.Tier{"standard": {Limit: 2, Window: time.Minute}}}
	rl.Defaults()
	r := startPP(t, echoUpstream(t).URL, func(c *Config) {
		c.RateLimit = rl
		for i := range c.Routes {
			if c.Routes[i].ID == "contacts.list" {
				c.Routes[i].RateLimit.Tier = "standard"
			}
		}
	}, Deps{Limiter: ratelimit.NewLocal(*rl, nil)})
	via := func(client string) *http.Client { return r.client(balancerIP, header(t, 2, client+":40000"), false, 0) }

	t.Run("rate limit per client", func(t *testing.T) {
		a := via("203.0.113.9")
		var got []int
		for range 3 {
			st, _, _ := r.get(t, a, "/api/contacts")
			got = append(got, st)
		}
		if fmt.Sprint(got) != "[200 200 429]" {
			t.Errorf("203.0.113.9: %v, want [200 200 429]", got)
		}
		if st, _, _ := r.get(t, via("203.0.113.10"), "/api/contacts"); st != 200 {
			t.Errorf("203.0.113.10 after 203.0.113.9 spent its allowance: %d, want 200", st)
		}
		// The balancer's own address has not been spent either.
		if st, _, _ := r.get(t, r.client(balancerIP, localV2, false, 0), "/api/contacts"); st != 200 {
			t.Errorf("the balancer's LOCAL connection: %d, want 200", st)
		}
	})

	t.Run("route allow and deny lists", func(t *testing.T) {
		for _, tt := range []struct {
			client string
			want   int
		}{{"192.0.2.10", 200}, {"192.0.2.66", 403}, {"203.0.113.9", 403}} {
			if st, _, _ := r.get(t, via(tt.client), "/api/office"); st != tt.want {
				t.Errorf("/api/office from %s: %d, want %d", tt.client, st, tt.want)
			}
		}
		// A client of its own (no balancer) is itself: not in the list.
		if st, _, _ := r.get(t, r.client(otherIP, nil, false, 0), "/api/office"); st != 403 {
			t.Errorf("/api/office from %s directly: %d, want 403", otherIP, st)
		}
	})
}

// The ClientHello after a PROXY header is the client's, fingerprinted as
// if it had connected directly; the session binding sees the header's
// client.
func TestProxyProtocolFingerprint(t *testing.T) {
	r := startPP(t, echoUpstream(t).URL, nil, Deps{})
	seen := map[string]AuditRecord{}
	for name, c := range map[string]*http.Client{
		"direct":  r.client(otherIP, nil, false, 0),
		"proxied": r.client(balancerIP, header(t, 2, "203.0.113.9:51000"), false, 0),
	} {
		res, err := c.Get(r.rs.url("/api/contacts"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		seen[name] = r.lastRecord(t, res.Header.Get("X-Request-Id"))
	}
	direct, proxied := seen["direct"].Scope, seen["proxied"].Scope
	if direct.TLS == nil || proxied.TLS == nil || proxied.TLS.Hello == nil {
		t.Fatalf("no TLS info: direct %+v, proxied %+v", direct.TLS, proxied.TLS)
	}
	if proxied.TLS.JA4 == "" || proxied.TLS.JA4 != direct.TLS.JA4 {
		t.Errorf("JA4 after a PROXY header = %q, directly %q: want the same, not empty", proxied.TLS.JA4, direct.TLS.JA4)
	}
	if proxied.TLS.ServerName != "localhost" || proxied.TLS.Hello.ServerName != "localhost" {
		t.Errorf("server name after a PROXY header = %q (hello %q), want localhost", proxied.TLS.ServerName, proxied.TLS.Hello.ServerName)
	}
	if direct.ClientIP.String() != otherIP || proxied.ClientIP.String() != "203.0.113.9" {
		t.Errorf("clients = %s and %s, want %s and 203.0.113.9", direct.ClientIP, proxied.ClientIP, otherIP)
	}
}

// How an attack case sends its bytes.
const (
	sendThenTLS = iota // the bytes, then a TLS handshake that must fail
	sendSplit          // the bytes in two writes 50ms apart, then TLS
	sendDrip           // one byte every 50ms
	sendStall          // the bytes, then nothing
	sendClose          // the bytes, then the write side closed
)

func TestAttackProxyProtocol(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	up := echoUpstream(t)
	r := startPP(t, up.URL, nil, Deps{})
	tlvBlock := func(n int) []byte { // one custom TLV of n bytes
		return append([]byte{0xE0, byte(n >> 8), byte(n)}, bytes.Repeat([]byte{'x'}, n)...)
	}
	udp := proxyproto.HeaderProxyFromAddrs(2, &net.UDPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 5}, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443})
	udpBytes, _ := udp.Format()
	unix := proxyproto.HeaderProxyFromAddrs(2, &net.UnixAddr{Net: "unix", Name: "/a"}, &net.UnixAddr{Net: "unix", Name: "/b"})
	unixBytes, _ := unix.Format()

	tests := []struct {
		name string
		src  string
		send []byte
		how  int
		want string
	}{
		// Spoofing: a client that reaches the gateway directly names
		// another address.
		{"untrusted source, v1 header", otherIP, header(t, 1, "192.0.2.10:1234"), sendThenTLS, refusedUntrusted},
		{"untrusted source, v2 header", otherIP, header(t, 2, "192.0.2.10:1234"), sendThenTLS, refusedUntrusted},
		{"untrusted source, v2 LOCAL", otherIP, localV2, sendThenTLS, refusedUntrusted},
		{"untrusted source, malformed v1", otherIP, []byte("PROXY TCP4 192.0.2.10\r\n"), sendThenTLS, refusedUntrusted},
		// A balancer that does not send the header fails closed.
		{"balancer without header", balancerIP, nil, sendThenTLS, refusedMissing},
		{"balancer sends plain HTTP", balancerIP, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), sendStall, refusedMissing},
		{"balancer connects and closes", balancerIP, nil, sendClose, refusedMissing},
		// Malformed headers.
		{"v1 bad address", balancerIP, []byte("PROXY TCP4 203.0.113.999 198.51.100.1 51000 443\r\n"), sendThenTLS, refusedMalformed},
		{"v1 family does not match address", balancerIP, []byte("PROXY TCP4 2001:db8::9 198.51.100.1 51000 443\r\n"), sendThenTLS, refusedMalformed},
		{"v1 no CRLF within 107 bytes", balancerIP, []byte("PROXY TCP4 " + strings.Repeat("1", 120)), sendStall, refusedMalformed},
		{"v1 LF without CR", balancerIP, []byte("PROXY TCP4 203.0.113.9 198.51.100.1 51000 443\n"), sendThenTLS, refusedMalformed},
		{"v1 trailing fields", balancerIP, []byte("PROXY TCP4 203.0.113.9 198.51.100.1 51000 443 extra\r\n"), sendThenTLS, refusedMalformed},
		{"v1 split over two writes", balancerIP, header(t, 1, "203.0.113.9:51000"), sendSplit, refusedMalformed},
		{"v2 unknown command", balancerIP, v2(0x2F, 0x11, 12, v4Block), sendThenTLS, refusedMalformed},
		{"v2 version 3", balancerIP, v2(0x31, 0x11, 12, v4Block), sendThenTLS, refusedMalformed},
		{"v2 UDP client", balancerIP, udpBytes, sendThenTLS, refusedMalformed},
		{"v2 Unix client", balancerIP, unixBytes, sendThenTLS, refusedMalformed},
		{"v2 PROXY without address", balancerIP, v2(0x21, 0x00, 0, nil), sendThenTLS, refusedMalformed},
		{"v2 length shorter than the addresses", balancerIP, v2(0x21, 0x11, 4, v4Block[:4]), sendThenTLS, refusedMalformed},
		{"v2 oversized TLVs", balancerIP, v2(0x21, 0x11, 12+3+5000, append(append([]byte{}, v4Block...), tlvBlock(5000)...)), sendStall, refusedMalformed},
		{"v2 largest length", balancerIP, v2(0x21, 0x11, 0xFFFF, v4Block), sendStall, refusedMalformed},
		{"v2 TLV longer than the header", balancerIP, v2(0x21, 0x11, 12+13, append(append([]byte{}, v4Block...), append([]byte{0xE0, 0, 100}, bytes.Repeat([]byte{'x'}, 10)...)...)), sendThenTLS, refusedMalformed},
		{"v2 truncated at close", balancerIP, header(t, 2, "203.0.113.9:51000")[:20], sendClose, refusedMalformed},
		// Slow senders are cut at header_timeout, not handshake_timeout.
		{"v2 dripped", balancerIP, header(t, 2, "203.0.113.9:51000"), sendDrip, refusedTimeout},
		{"v2 signature then nothing", balancerIP, proxyproto.SIGV2, sendStall, refusedTimeout},
		{"balancer sends nothing", balancerIP, nil, sendStall, refusedTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.metrics(t)[refusedSeries(tt.want)]
			c := r.mustDial(t, tt.src)
			start := time.Now()
			switch tt.how {
			case sendThenTLS, sendSplit:
				if tt.how == sendSplit {
					_, _ = c.Write(tt.send[:11])
					time.Sleep(50 * time.Millisecond)
					_, _ = c.Write(tt.send[11:])
				} else {
					_, _ = c.Write(tt.send)
				}
				tc := tls.Client(c, &tls.Config{RootCAs: r.rs.pool, ServerName: "localhost"})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := tc.HandshakeContext(ctx); err == nil {
					t.Fatal("TLS handshake after the header succeeded, want the connection refused")
				}
			case sendDrip:
				go drip(c, tt.send, 50*time.Millisecond)
			case sendStall:
				_, _ = c.Write(tt.send)
			case sendClose:
				_, _ = c.Write(tt.send)
				_ = c.(*net.TCPConn).CloseWrite()
			}
			if d, closed := waitClosed(c, 3*time.Second); !closed {
				t.Fatalf("connection still open after %s", d)
			}
			if d := time.Since(start); tt.want == refusedTimeout && (d < headerTimeout-50*time.Millisecond || d > 2*time.Second) {
				t.Errorf("closed after %s, want about header_timeout %s (handshake_timeout is 10s)", d, headerTimeout)
			}
			if got := r.metrics(t)[refusedSeries(tt.want)]; got != before+1 {
				t.Errorf("%s = %v, want %v", refusedSeries(tt.want), got, before+1)
			}
		})
	}

	logs := r.logs.String()
	if !strings.Contains(logs, `"reason":"untrusted_source","peer":"`+otherIP+`:`) || !strings.Contains(logs, "spoofing attempt") {
		t.Errorf("no warning naming the spoofing source in the log:\n%s", logs)
	}
	// Refusals leave no connection counted as open, and the gateway serves.
	for deadline := time.Now().Add(3 * time.Second); r.metrics(t)["crmgate_connections_open"] != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("crmgate_connections_open = %v after every refused connection closed, want 0", r.metrics(t)["crmgate_connections_open"])
			break
		}
	}
	if st, e, _ := r.get(t, r.client(balancerIP, header(t, 2, "203.0.113.9:51000"), false, 0), "/api/contacts"); st != 200 || e.Header.Get("X-Forwarded-For") != "203.0.113.9" {
		t.Errorf("after the attacks: %d from %q, want 200 from 203.0.113.9", st, e.Header.Get("X-Forwarded-For"))
	}
}

// Without server.proxy_protocol a PROXY header is not believed: it is not
// TLS, so the handshake fails.
func TestProxyProtocolOff(t *testing.T) {
	rs := startServer(t, echoUpstream(t).URL, nil)
	c, err := net.Dial("tcp", rs.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(header(t, 2, "192.0.2.10:1234"))
	if err := tls.Client(c, &tls.Config{RootCAs: rs.pool, ServerName: "localhost"}).Handshake(); err == nil {
		t.Error("handshake after a PROXY header succeeded on a listener without proxy_protocol")
	}
}

func TestProxyProtocolConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  ProxyProtocolConfig
		want []string
	}{
		{"off", ProxyProtocolConfig{}, nil},
		{"addresses and CIDRs", ProxyProtocolConfig{From: []string{"10.0.0.7", "10.1.0.0/16", "2001:db8::/64", "::ffff:10.0.0.8"}, HeaderTimeout: time.Second}, nil},
		{"bad entries", ProxyProtocolConfig{From: []string{"10.1.2.3/8", "balancer", "10.0.0.0/33", ""}}, []string{
			`from[0]: "10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?`,
			`from[1]: "balancer" is not an IP address or CIDR`,
			`from[2]: "10.0.0.0/33" is not a CIDR (e.g. 10.0.0.0/8 or 2001:db8::/32)`,
			`from[3]: "" is not an IP address or CIDR`,
		}},
		{"every address", ProxyProtocolConfig{From: []string{"0.0.0.0/0", "::/0"}}, []string{
			`from[0]: "0.0.0.0/0" is every address: anyone who can connect could claim any client address; list the load balancers' addresses or their subnet`,
			`from[1]: "::/0" is every address: anyone who can connect could claim any client address; list the load balancers' addresses or their subnet`,
		}},
		{"negative timeout", ProxyProtocolConfig{From: []string{"10.0.0.7"}, HeaderTimeout: -time.Second}, []string{
			"header_timeout: must be positive, got -1s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := tt.cfg.Validate(); err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
	var c ProxyProtocolConfig
	c.Defaults()
	if c.HeaderTimeout != 5*time.Second || c.Enabled() {
		t.Errorf("defaults = %+v, enabled %v; want header_timeout 5s and off", c, c.Enabled())
	}
}

// An address-only entry holds exactly that address, mapped or not.
func TestProxyProtocolBalancerMatch(t *testing.T) {
	p := &proxyProtocol{from: parsePrefixes([]string{"10.0.0.7", "10.1.0.0/16", "2001:db8::/64"})}
	for addr, want := range map[string]bool{
		"10.0.0.7:1": true, "10.0.0.8:1": false, "10.1.200.3:1": true, "[::ffff:10.0.0.7]:1": true,
		"[2001:db8::1]:1": true, "[2001:db8:0:1::1]:1": false, "192.0.2.1:1": false,
	} {
		if got := p.balancer(net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr))); got != want {
			t.Errorf("balancer(%s) = %v, want %v", addr, got, want)
		}
	}
	if p.balancer(&net.UnixAddr{Name: "/x", Net: "unix"}) {
		t.Error("balancer(unix address) = true, want false")
	}
}

func TestProxyProtocolRefusalReason(t *testing.T) {
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: osDeadline{}}
	tests := []struct {
		name         string
		err          error
		fromBalancer bool
		want         string
	}{
		{"balancer timeout", timeout, true, refusedTimeout},
		{"balancer timeout inside a v2 header", fmt.Errorf("%w: %w", proxyproto.ErrCantReadLength, timeout), true, refusedTimeout},
		{"balancer without header", proxyproto.ErrNoProxyProtocol, true, refusedMissing},
		{"balancer bad header", proxyproto.ErrInvalidLength, true, refusedMalformed},
		{"balancer cut short", fmt.Errorf("%w: %w", proxyproto.ErrCantReadVersion1Header, io.EOF), true, refusedMalformed},
		{"balancer not TCP", errProxyTransport, true, refusedMalformed},
		{"other with header", proxyproto.ErrSuperfluousProxyHeader, false, refusedUntrusted},
		{"other with a broken header", proxyproto.ErrCantReadAddressFamilyAndProtocol, false, refusedUntrusted},
		{"other timing out", timeout, false, ""},
		{"other reset", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false, ""},
		{"other closing in a header", fmt.Errorf("%w: %w", proxyproto.ErrCantReadVersion1Header, io.EOF), false, ""},
	}
	for _, tt := range tests {
		if got := refusal(tt.err, tt.fromBalancer); got != tt.want {
			t.Errorf("%s: refusal(%v, %v) = %q, want %q", tt.name, tt.err, tt.fromBalancer, got, tt.want)
		}
	}
}

// osDeadline is a timeout as the network reports one.
type osDeadline struct{}

func (osDeadline) Error() string   { return "i/o timeout" }
func (osDeadline) Timeout() bool   { return true }
func (osDeadline) Temporary() bool { return true }

// BenchmarkAcceptPath is the per-connection cost of the HTTPS listener:
// TCP connect, TLS handshake (ECDSA P-256, no resumption), one HTTP/1.1
// request and its response, close; from a client directly and through a
// balancer's PROXY header.
func BenchmarkAcceptPath(b *testing.B) {
	up := benchUpstream(b)
	for _, bc := range []struct {
		name, src string
		header    []byte
	}{
		{"direct", otherIP, nil},
		{"proxy-v1", balancerIP, header(b, 1, "203.0.113.9:51000")},
		{"proxy-v2", balancerIP, header(b, 2, "203.0.113.9:51000")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &ppRig{rs: startServerWith(b, up.URL, func(c *Config) {
				c.Server.ProxyProtocol = ProxyProtocolConfig{From: []string{balancerIP}, HeaderTimeout: 5 * time.Second}
				c.Routes = []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: AuthNone}}
			}, Deps{})}
			c := r.client(bc.src, bc.header, false, 0)
			url := r.rs.url("/api/contacts/42")
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatal(res.StatusCode)
				}
			}
		})
	}
}

// BenchmarkProxyHeaderRead isolates what the PROXY header adds to a
// connection: TCP connect, accept, the header (none on a plain listener),
// one byte each way, close.
func BenchmarkProxyHeaderRead(b *testing.B) {
	for _, bc := range []struct {
		name   string
		wrap   bool
		header []byte
	}{
		{"plain-listener", false, nil},
		{"direct", true, nil},
		{"proxy-v1", true, header(b, 1, "203.0.113.9:51000")},
		{"proxy-v2", true, header(b, 2, "203.0.113.9:51000")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, _ := newMetrics(nil)
			p := newProxyProtocol(ProxyProtocolConfig{From: []string{balancerIP}, HeaderTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), m)
			ln, err := net.Listen("tcp", balancerIP+":0")
			if err != nil {
				b.Fatal(err)
			}
			if bc.wrap {
				ln = p.wrap(ln)
			}
			defer ln.Close()
			go func() {
				buf := make([]byte, 1)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if pc, ok := c.(*proxyproto.Conn); ok && !p.admit(context.Background(), pc, time.Now().Add(5*time.Second)) {
						c.Close()
						continue
					}
					if _, err := io.ReadFull(c, buf); err == nil {
						_, _ = c.Write(buf)
					}
					c.Close()
				}
			}()
			src := otherIP
			if bc.header != nil {
				src = balancerIP
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			msg := append(append([]byte{}, bc.header...), 0x16)
			buf := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}

// memConn is a connection whose peer has already sent b, for measuring the
// header's CPU cost without the network's.
type memConn struct {
	net.Conn
	r    bytes.Reader
	peer net.Addr
}

func (c *memConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *memConn) RemoteAddr() net.Addr            { return c.peer }
func (c *memConn) LocalAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetReadDeadline(time.Time) error { return nil }
func (c *memConn) SetDeadline(time.Time) error     { return nil }
func (c *memConn) Close() error                    { return nil }

// BenchmarkProxyHeaderAdmit is the CPU cost of admit alone: wrapping the
// connection, reading and validating the header, and the first read after
// it.
func BenchmarkProxyHeaderAdmit(b *testing.B) {
	for _, bc := range []struct {
		name, src string
		header    []byte
	}{
		{"direct", otherIP, nil},
		{"proxy-v1", balancerIP, header(b, 1, "203.0.113.9:51000")},
		{"proxy-v2", balancerIP, header(b, 2, "203.0.113.9:51000")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, _ := newMetrics(nil)
			p := newProxyProtocol(ProxyProtocolConfig{From: []string{balancerIP}, HeaderTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), m)
			peer := &net.TCPAddr{IP: net.ParseIP(bc.src), Port: 40000}
			stream := append(append([]byte{}, bc.header...), 0x16, 0x03, 0x01)
			c := &memConn{peer: peer}
			ln := p.wrap(&oneConnListener{c: c})
			buf := make([]byte, 3)
			deadline := time.Now().Add(time.Hour)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c.r.Reset(stream)
				raw, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				if !p.admit(ctx, raw.(*proxyproto.Conn), deadline) {
					b.Fatal("refused")
				}
				if _, err := io.ReadFull(raw, buf); err != nil || buf[0] != 0x16 {
					b.Fatalf("read after the header: %x %v", buf, err)
				}
			}
		})
	}
}

// oneConnListener accepts the same connection every time.
type oneConnListener struct{ c net.Conn }

func (l *oneConnListener) Accept() (net.Conn, error) { return l.c, nil }
func (l *oneConnListener) Close() error              { return nil }
func (l *oneConnListener) Addr() net.Addr            { return &net.TCPAddr{} }

// Shutdown does not wait for a header that has not come, neither from a
// balancer nor from a direct client (which may take up to handshake_timeout
// to show it sends none).
func TestProxyProtocolShutdown(t *testing.T) {
	r := startPP(t, echoUpstream(t).URL, func(c *Config) {
		c.Server.ProxyProtocol.HeaderTimeout = 10 * time.Second
		c.Server.HandshakeTimeout = 10 * time.Second
	}, Deps{})
	for _, src := range []string{balancerIP, otherIP} {
		r.mustDial(t, src)
	}
	time.Sleep(200 * time.Millisecond) // both accepted and waiting
	start := time.Now()
	r.rs.cancel()
	select {
	case <-r.rs.done:
	case <-time.After(5 * time.Second):
		t.Fatal("server still waiting for PROXY headers 5s after shutdown began")
	}
	r.rs.done <- nil // for the cleanup
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %s with connections waiting for a header, want well under the 10s timeouts", d)
	}
	if m := r.metrics(t); m[refusedSeries(refusedMalformed)]+m[refusedSeries(refusedTimeout)]+m[refusedSeries(refusedMissing)] != 0 {
		t.Errorf("shutdown counted as refusals: %v", m)
	}
}
