package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

var (
	replicaAuditLog = regexp.MustCompile(`(?m)^    path: "([^"]*audit\.log)"$`)
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
// protocol: the CRM, the rate limits, the request log and the audit trail
// see the client the balancer names; a client that reaches the gateway
// directly and sends a header is refused (spoofing), and so is the
// balancer when it sends none. 127.0.0.2 plays the direct client; a real
// HAProxy configured as in deploy/compose/haproxy.cfg is the balancer last.
func TestProxyProtocol(t *testing.T) {
	d := startDemo(t)
	var auditLog string
	r := startReplica(t, d, func(cfg string) string {
		if m := replicaAuditLog.FindStringSubmatch(cfg); m != nil {
			auditLog = m[1]
		}
		// Three requests a minute per anonymous client, so that one
		// client's spent allowance shows.
		const anon = "    anonymous: {limit: 100, burst: 200}\n"
		if !strings.Contains(cfg, anon) {
			t.Fatalf("the demo configuration has no %q", anon)
		}
		cfg = strings.Replace(cfg, anon, "    anonymous: {limit: 3, window: 1m}\n", 1)
		return strings.Replace(cfg, "\nserver:\n", "\nserver:\n  proxy_protocol:\n    from: [127.0.0.1]\n    header_timeout: 2s\n", 1)
	})
	if auditLog == "" {
		t.Fatal("no audit.file.path in the replica's configuration")
	}
	addr := "127.0.0.1" + strings.TrimPrefix(r.URL, "https://localhost")

	// whoami returns the status, what the CRM received and the request id,
	// or the error of a refused connection.
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
		return res.StatusCode, body.Headers, res.Header.Get("X-Request-Id"), ""
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
			st, hdr, rid, err := whoami(behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, tt.version, tt.client)))
			if st != 200 || hdr.Get("X-Forwarded-For") != tt.want || hdr.Get("X-Real-Ip") != tt.want {
				t.Fatalf("%s: GET /api/whoami = %d %s, the CRM saw X-Forwarded-For %q, X-Real-Ip %q; want 200 and %s", tt.name, st, err, hdr.Get("X-Forwarded-For"), hdr.Get("X-Real-Ip"), tt.want)
			}
			ev := waitAudit(t, auditLog, "of request "+rid, requestEvent(rid))[0]
			if got := ev.str("src_endpoint.ip"); got != tt.want {
				t.Errorf("%s: audit event src_endpoint.ip = %q, want %s", tt.name, got, tt.want)
			}
		}
		for deadline := time.Now().Add(3 * time.Second); !strings.Contains(r.out.String(), `"client_ip":"203.0.113.9"`) || !strings.Contains(r.out.String(), `"proxy_protocol_from":["127.0.0.1"]`); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("the replica's log has no request from 203.0.113.9 or no proxy_protocol_from at start:\n%s", tail(r.out.String(), 4096))
				break
			}
		}
	})

	t.Run("rate limits count per client", func(t *testing.T) {
		a := behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, 2, "203.0.113.20:40000"))
		var got []int
		for range 4 {
			st, _, _, _ := whoami(a)
			got = append(got, st)
		}
		if fmt.Sprint(got) != "[200 200 200 429]" {
			t.Errorf("203.0.113.20: %v, want [200 200 200 429]", got)
		}
		if st, _, _, _ := whoami(behindBalancer(t, d, addr, "127.0.0.1", proxyHeader(t, 2, "203.0.113.21:40000"))); st != 200 {
			t.Errorf("203.0.113.21 after 203.0.113.20 spent its allowance: %d, want 200", st)
		}
	})

	t.Run("a direct client is itself and cannot claim another address", func(t *testing.T) {
		if st, hdr, _, err := whoami(behindBalancer(t, d, addr, "127.0.0.2", nil)); st != 200 || hdr.Get("X-Forwarded-For") != "127.0.0.2" {
			t.Errorf("direct client: %d %s, CRM saw %q; want 200 from 127.0.0.2", st, err, hdr.Get("X-Forwarded-For"))
		}
		if st, _, _, _ := whoami(behindBalancer(t, d, addr, "127.0.0.2", proxyHeader(t, 2, "192.0.2.10:1234"))); st != 0 {
			t.Errorf("direct client with a PROXY header: %d, want the connection refused", st)
		}
	})

	t.Run("the balancer without a header fails closed", func(t *testing.T) {
		if st, _, _, _ := whoami(behindBalancer(t, d, addr, "127.0.0.1", nil)); st != 0 {
			t.Errorf("balancer without a header: %d, want the connection refused", st)
		}
	})

	refused := map[string]float64{
		`crmgate_proxy_protocol_refused_total{reason="untrusted_source"}`: 1,
		`crmgate_proxy_protocol_refused_total{reason="missing_header"}`:   1,
		`crmgate_proxy_protocol_refused_total{reason="malformed"}`:        0,
		`crmgate_proxy_protocol_refused_total{reason="timeout"}`:          0,
	}
	const v1, v2 = `crmgate_proxy_protocol_headers_total{command="proxy",version="1"}`, `crmgate_proxy_protocol_headers_total{command="proxy",version="2"}`
	m := d.metricsAt(t, r.AdminURL)
	for name, want := range refused {
		if got := metricValue(m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got1, got2 := metricValue(m, v1), metricValue(m, v2); got1 != 1 || got2 != 7 {
		t.Errorf("headers accepted: %v v1, %v v2; want 1 and 7", got1, got2)
	}
	// Log lines are buffered for up to log.flush_interval.
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(grepLines(r.out.String(), "spoofing attempt"), `"peer":"127.0.0.2:`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no warning naming 127.0.0.2 in the replica's log:\n%s", tail(r.out.String(), 4096))
			break
		}
	}

	// The balancer of the deployment recipe, with its server lines and
	// health checks as in deploy/compose/haproxy.cfg.
	t.Run("HAProxy with send-proxy-v2 and send-proxy", func(t *testing.T) {
		adminPort := r.AdminURL[strings.LastIndex(r.AdminURL, ":")+1:]
		hp := startHAProxy(t, fmt.Sprintf(`global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
frontend v2
    bind 127.0.0.1:%[1]d
    default_backend v2
frontend v1
    bind 127.0.0.1:%[2]d
    default_backend v1
backend v2
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server send-proxy-v2 check port %[3]s inter 200ms fall 2 rise 1
    server gateway %[4]s
backend v1
    server gateway %[4]s send-proxy
`, freePort(t), freePort(t), adminPort, addr))
		// Long enough for failing checks to take the server down: they go
		// to the admin port, which takes no PROXY header.
		time.Sleep(time.Second)
		for i, front := range hp.fronts {
			st, hdr, _, err := whoami(behindBalancer(t, d, front, "127.0.0.3", nil))
			if st != 200 || hdr.Get("X-Forwarded-For") != "127.0.0.3" {
				t.Errorf("frontend %d: GET /api/whoami from 127.0.0.3 through HAProxy = %d %s, CRM saw %q; want 200 from 127.0.0.3", i, st, err, hdr.Get("X-Forwarded-For"))
			}
		}
		if out := hp.out.String(); strings.Contains(out, "DOWN") || strings.Contains(out, "ALERT") {
			t.Errorf("HAProxy reported:\n%s", out)
		}
	})

	// HAProxy's connections all carried a header, and its health checks
	// went elsewhere: nothing more was refused.
	m = d.metricsAt(t, r.AdminURL)
	for name, want := range refused {
		if got := metricValue(m, name); got != want {
			t.Errorf("after HAProxy: %s = %v, want %v", name, got, want)
		}
	}
	if got1, got2 := metricValue(m, v1), metricValue(m, v2); got1 < 2 || got2 < 8 {
		t.Errorf("after HAProxy: headers accepted %v v1, %v v2; want more than before", got1, got2)
	}
}

// haproxy is a running HAProxy owned by a test.
type haproxy struct {
	// fronts are the frontends' addresses, in the order of the
	// configuration.
	fronts []string
	out    *lockedBuffer
}

var haproxyBind = regexp.MustCompile(`(?m)^    bind (127\.0\.0\.1:\d+)$`)

// startHAProxy runs haproxy in the foreground on cfg, waits until its
// frontends accept connections, and stops it when the test ends. A missing
// haproxy fails the test: `make test` installs it.
func startHAProxy(t *testing.T, cfg string) *haproxy {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy not found in PATH (%v): this test runs a real one; `make test` installs it (apt-get install haproxy)", err)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	hp := &haproxy{out: &lockedBuffer{}}
	for _, m := range haproxyBind.FindAllStringSubmatch(cfg, -1) {
		hp.fronts = append(hp.fronts, m[1])
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = hp.out, hp.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("haproxy output:\n%s", tail(hp.out.String(), 4096))
		}
	})
	for _, front := range hp.fronts {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := net.Dial("tcp", front)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				t.Fatalf("haproxy exited:\n%s", hp.out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("haproxy not listening on %s after 10s:\n%s", front, hp.out.String())
			}
		}
	}
	return hp
}
