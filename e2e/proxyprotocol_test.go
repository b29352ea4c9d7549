package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

var (
	replicaAuditLog = regexp.MustCompile(`(?m)^    path: "([^"]*audit\.log)"$`)
	rateRemaining   = regexp.MustCompile(`;r=(\d+)`)
)

// behindBalancer is an HTTP/1.1 client of the gateway at addr whose every
// connection comes from src and opens with the PROXY header for client
// (nil: client "" sends none).
func behindBalancer(t *testing.T, d *demo, addr, src string, header []byte) *http.Client {
	t.Helper()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			c, err := dl.DialContext(ctx, "tcp", addr)
			if err == nil && header != nil {
				if _, err = c.Write(header); err != nil {
					c.Close()
				}
			}
			return c, err
		},
		TLSClientConfig:   &tls.Config{RootCAs: d.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}},
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func proxyHeader(t *testing.T, version byte, client string) []byte {
	t.Helper()
	src := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client))
	b, err := proxyproto.HeaderProxyFromAddrs(version, src, &net.TCPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 443}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A replica behind an L4 balancer at 127.0.0.1 that sends the PROXY
// protocol: the CRM, the rate limits, the request log, the audit trail
// see the client the balancer names; a client that reaches the gateway
// directly and sends a header is refused (spoofing), and so is the
// balancer when it sends none. 127.0.0.2 plays the direct client.
func TestProxyProtocol(t *testing.T) {
	d := startDemo(t)
	var auditLog string
	r := startReplica(t, d, func(cfg string) string {
		if m := replicaAuditLog.FindStringSubmatch(cfg); m != nil {
			auditLog = m[1]
		}
		return strings.Replace(cfg, "\nserver:\n", "\nserver:\n  proxy_protocol:\n    from: [127.0.0.1]\n    header_timeout: 2s\n", 1)
	})
	if auditLog == "" {
		t.Fatal("no audit.file.path in the replica's configuration")
	}
	addr := "127.0.0.1" + strings.TrimPrefix(r.URL, "https://localhost")

	// whoami returns what the CRM received, and the rate limit left.
	whoami := func(c *http.Client) (int, http.Header, string, string) {
		t.Helper()
		res, err := c.Get(r.URL + "/api/whoami")
		if err != nil {
			return 0, nil, "", err.Error()
		}
		defer res.Body.Close()
		var body struct {
			Headers http.Header `json:"headers"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		left := ""
		if m := rateRemaining.FindStringSubmatch(res.Header.Get("RateLimit")); m != nil {
			left = m[1]
		}
		return res.StatusCode, body.Headers, res.Header.Get("X-Request-Id"), left
	}

	t.Run("the header's client is the client", func(t *testing.T) {
		for _, tt := range []struct {
			name, client, want string
			version            byte
		}{
			{"v2", "203.0.113.9:51000", "203.0.113.9", 2},
			{"v1", "203.0.113.9:51001", "203.0.113.9", 1},
			{"v2 IPv6", "[2001:db8::9]:51000", "2001:db8::9", 2},
		} {
			st, hdr, rid, _ := whoami(behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, tt.version, tt.client)))
			if st != 200 || hdr.Get("X-Forwarded-For") != tt.want || hdr.Get("X-Real-Ip") != tt.want {
				t.Fatalf("%s: GET /api/whoami = %d, the CRM saw X-Forwarded-For %q, X-Real-Ip %q; want 200 and %s", tt.name, st, hdr.Get("X-Forwarded-For"), hdr.Get("X-Real-Ip"), tt.want)
			}
			ev := waitAudit(t, auditLog, "of request "+rid, requestEvent(rid))[0]
			if got := ev.str("src_endpoint.ip"); got != tt.want {
				t.Errorf("%s: audit event src_endpoint.ip = %q, want %s", tt.name, got, tt.want)
			}
		}
		if !strings.Contains(r.out.String(), `"client_ip":"203.0.113.9"`) || !strings.Contains(r.out.String(), `"proxy_protocol_from":["127.0.0.1"]`) {
			t.Errorf("the replica's log has no request from 203.0.113.9 or no proxy_protocol_from at start:\n%s", tail(r.out.String(), 4096))
		}
	})

	t.Run("rate limits count per client", func(t *testing.T) {
		a := behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, 2, "203.0.113.20:40000"))
		b := behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, 2, "203.0.113.21:40000"))
		_, _, _, a1 := whoami(a)
		_, _, _, a2 := whoami(a)
		_, _, _, b1 := whoami(b)
		if a1 == "" || a2 == a1 || b1 != a1 {
			t.Errorf("allowance left: 203.0.113.20 %q then %q, 203.0.113.21 %q; want each client its own bucket", a1, a2, b1)
		}
	})

	t.Run("a direct client is itself and cannot claim another address", func(t *testing.T) {
		if st, hdr, _, _ := whoami(behindBalancer(t, d, addr, "127.0.0.2", nil)); st != 200 || hdr.Get("X-Forwarded-For") != "127.0.0.2" {
			t.Errorf("direct client: %d, CRM saw %q; want 200 from 127.0.0.2", st, hdr.Get("X-Forwarded-For"))
		}
		if st, _, _, err := whoami(behindBalancer(t, d, addr, "127.0.0.2", proxyHeader(t, 2, "192.0.2.10:1234"))); st != 0 {
			t.Errorf("direct client with a PROXY header: %d, want the connection refused", st)
		} else {
			t.Logf("direct client with a PROXY header: %s", err)
		}
	})

	t.Run("the balancer without a header fails closed", func(t *testing.T) {
		if st, _, _, _ := whoami(behindBalancer(t, d, addr, "127.0.0.1", nil)); st != 0 {
			t.Errorf("balancer without a header: %d, want the connection refused", st)
		}
	})

	m := d.metricsAt(t, r.AdminURL)
	for name, want := range map[string]float64{
		`crmgate_proxy_protocol_refused_total{reason="untrusted_source"}`:   1,
		`crmgate_proxy_protocol_refused_total{reason="missing_header"}`:     1,
		`crmgate_proxy_protocol_refused_total{reason="malformed"}`:          0,
		`crmgate_proxy_protocol_refused_total{reason="timeout"}`:            0,
		`crmgate_proxy_protocol_headers_total{command="proxy",version="1"}`: 1,
		`crmgate_proxy_protocol_headers_total{command="proxy",version="2"}`: 5,
	} {
		if got := metricValue(m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if lines := grepLines(r.out.String(), "spoofing attempt"); !strings.Contains(lines, `"peer":"127.0.0.2:`) {
		t.Errorf("no warning naming 127.0.0.2 in the replica's log:\n%s", tail(r.out.String(), 4096))
	}
}
