package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The CPU layout: the configuration under test, with any sidecar of its
// own (Redis, an OPA server), has CPU 0; the upstream, the identity
// provider and the load generators share CPU 1. Each Go program runs with
// GOMAXPROCS=1.
const (
	serverCPU = 0
	loadCPU   = 1
)

// server is one running configuration.
type server struct {
	base string // https://localhost:PORT
	// auth are the headers of an authenticated request (session cookie,
	// browser headers), empty where none is needed.
	auth  []string
	procs []*proc
	// metrics is the URL of Prometheus text with go_memstats_mallocs_total
	// (Go servers), or "".
	metrics string
	// apiKey is the X-API-Key header of a valid key, or "".
	apiKey string
	// bearer is the Authorization header of a valid JWT access token,
	// or "".
	bearer string
	// pprof is crmgate's CPU profile URL with -pprof, and tag names
	// the profile's file.
	pprof, tag string
}

// pgids are the process groups whose CPU time counts as the server's.
func (s *server) pgids() []int {
	var g []int
	for _, p := range s.procs {
		g = append(g, p.cmd.Process.Pid)
	}
	return g
}

// checkAlive fails if one of s's processes ended.
func (s *server) checkAlive() error {
	for _, p := range s.procs {
		if err := p.checkAlive(); err != nil {
			return err
		}
	}
	return nil
}

// configuration is one way of serving the upstream over TLS.
type configuration struct {
	id   string // C0 ... C8, with a suffix for variants
	name string
	what string // one line for the report
	// start runs it with the given certificate on e.sutAddr.
	start func(ctx context.Context, e *env, tag string, cert certSet) (*server, error)
	// workloads beyond get2k measured in every round.
	workloads []string
	// stair marks the crmgate feature staircase, shown with the cost of
	// each added feature.
	stair bool
}

var (
	mainWorkloads = []string{"get64k", "post1k"}
	denyWorkloads = []string{"deny401", "deny403", "deny429"}
	// credWorkloads are the machine clients' credentials.
	credWorkloads = []string{"apikey", "jwt"}
)

var configurations = []configuration{
	{"C0", "direct", "the upstream itself (nginx, one worker) over TLS: the harness's ceiling", startDirect, mainWorkloads, false},
	{"C1", "nginx", "nginx proxy_pass, one worker, upstream keep-alive", startNginx, mainWorkloads, false},
	{"C2", "haproxy", "haproxy, one thread, http-reuse always", startHAProxy, mainWorkloads, false},
	{"C3", "caddy", "Caddy reverse_proxy", startCaddy, mainWorkloads, false},
	{"C4", "baseline", "bare httputil.ReverseProxy with a buffer pool: the Go floor", startBaseline, mainWorkloads, false},
	{"C5", "oauth2-proxy", "oauth2-proxy, OIDC session in the cookie store", startOAuth2ProxyCookie, mainWorkloads, false},
	{"C5r", "oauth2-proxy-redis", "oauth2-proxy, OIDC session in Redis (redis-server on CPU 0)", startOAuth2ProxyRedis, mainWorkloads, false},
	{"C6", "crmgate", "crmgate minimal: TLS, OIDC session (memory store), proxy", stairStart(stairOpts{}), mainWorkloads, true},
	{"C7.1", "+api-keys/jwt", "C6 and API keys (file store) and JWT access tokens accepted on the routes", stairStart(stairOpts{apiKeys: true}), nil, true},
	{"C7.2", "+rate-limit", "and a local rate limit on every request", stairStart(stairOpts{apiKeys: true, rateLimit: true}), nil, true},
	{"C7.3", "+fingerprint", "and session binding on JA4, user agent, network and language", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true}), nil, true},
	{"C7.4", "+policy", "and the embedded OPA policy (shipped rules, no redactions)", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true, policy: true}), nil, true},
	{"C7.5", "+redaction", "and the shipped views: ssn removed, card, e-mail and phone masked", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true, policy: true, redact: true}), nil, true},
	{"C7", "crmgate-full", "and the audit trail (signed file sink with spool): the full pipeline, local state", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true, policy: true, redact: true, audit: true}), concat(mainWorkloads, credWorkloads, denyWorkloads), true},
	{"C7r", "crmgate-full-redis", "C7 with sessions and rate limits in Redis (redis-server on CPU 0)", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true, policy: true, redact: true, audit: true, redis: true}), concat(mainWorkloads, denyWorkloads), false},
	{"C8", "crmgate-opa-server", "C7.4 with every decision asked of an OPA server (opa run --server on CPU 0, loopback HTTP) instead of the embedded engine", stairStart(stairOpts{apiKeys: true, rateLimit: true, fingerprint: true, policy: true, opaServer: true}), []string{"deny403"}, false},
}

// concat is the workload lists one after the other, in a new slice.
func concat(lists ...[]string) []string {
	var all []string
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}

func configByID(id string) (configuration, bool) {
	for _, c := range configurations {
		if c.id == id {
			return c, true
		}
	}
	return configuration{}, false
}

const readyTimeout = 30 * time.Second

// ready waits until s answers GET pathItem with 200 (with its
// authentication), its certificate verified.
func (e *env) ready(ctx context.Context, s *server) (*server, error) {
	url := s.base + pathItem
	err := waitReady(ctx, s.procs[len(s.procs)-1], readyTimeout, func(ctx context.Context) error { return getOK(ctx, e.caPool, url, s.auth) })
	if err != nil {
		e.stopServer(s)
		return nil, err
	}
	return s, nil
}

func (e *env) stopServer(s *server) {
	for i := len(s.procs) - 1; i >= 0; i-- {
		e.procs.stop(s.procs[i], 5*time.Second)
	}
}

func (e *env) base() string { return "https://localhost:" + port(e.sutAddr) }

func startDirect(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	conf := nginxCommon(e, tag, true) + "  access_log off;\n  sendfile on; tcp_nopush on;\n" +
		nginxTLSServer(e, cert) + nginxContent(e) + "  }\n}\n"
	return e.startNginxConf(ctx, tag, conf)
}

func nginxTLSServer(e *env, cert certSet) string {
	return fmt.Sprintf(`  server {
    listen %s ssl backlog=4096;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_session_tickets off;
    ssl_session_cache off;
`, e.sutAddr, cert.cert, cert.key)
}

func startNginx(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	conf := nginxCommon(e, tag, true) + fmt.Sprintf("  access_log %s combined buffer=64k flush=1s;\n", filepath.Join(e.work, tag+"-access.log")) +
		fmt.Sprintf("  upstream crm {\n    server %s;\n    keepalive 64;\n  }\n", e.upAddr) +
		nginxTLSServer(e, cert) +
		"    location / {\n      proxy_pass http://crm;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_buffering on;\n    }\n  }\n}\n"
	return e.startNginxConf(ctx, tag, conf)
}

func (e *env) startNginxConf(ctx context.Context, tag, conf string) (*server, error) {
	path := filepath.Join(e.work, tag+"-nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := e.procs.start(tag, nil, pinned(serverCPU, e.tools["nginx"], "-c", path, "-e", "stderr")...)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, &server{base: e.base(), procs: []*proc{p}})
}

func startHAProxy(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	conf := fmt.Sprintf(`global
  nbthread 1
  maxconn 4096
  tune.ssl.default-dh-param 2048
  ssl-default-bind-options ssl-min-ver TLSv1.3
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 120s
  option http-keep-alive
frontend fe
  bind %s ssl crt %s alpn http/1.1 curves X25519 ssl-min-ver TLSv1.3 no-tls-tickets
  default_backend crm
backend crm
  http-reuse always
  server up %s
`, e.sutAddr, cert.combined, e.upAddr)
	path := filepath.Join(e.work, tag+"-haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	p, err := e.procs.start(tag, nil, pinned(serverCPU, e.tools["haproxy"], "-db", "-f", path)...)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, &server{base: e.base(), procs: []*proc{p}})
}

func startCaddy(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`{
	admin %s
	auto_https off
	persist_config off
	servers {
		protocols h1
	}
}
https://localhost:%s {
	bind 127.0.0.1
	tls %s %s {
		protocols tls1.3
		curves x25519
		alpn http/1.1
	}
	reverse_proxy %s
}
`, admin, port(e.sutAddr), cert.cert, cert.key, e.upAddr)
	path := filepath.Join(e.work, tag+".Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	home := filepath.Join(e.work, tag+"-home")
	_ = os.MkdirAll(home, 0o700)
	p, err := e.procs.start(tag, []string{"GOMAXPROCS=1", "HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home},
		pinned(serverCPU, e.tools["caddy"], "run", "--config", path, "--adapter", "caddyfile")...)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, &server{base: e.base(), procs: []*proc{p}, metrics: "http://" + admin + "/metrics"})
}

func startBaseline(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := e.procs.start(tag, []string{"GOMAXPROCS=1"}, pinned(serverCPU,
		filepath.Join(e.bin, "baseline"), "-addr", e.sutAddr, "-upstream", "http://"+e.upAddr, "-cert", cert.cert, "-key", cert.key, "-metrics", metrics)...)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, &server{base: e.base(), procs: []*proc{p}, metrics: "http://" + metrics + "/metrics"})
}

// startRedis starts a redis-server on the server CPU: it belongs to the
// configuration, so its CPU time counts.
func startRedis(ctx context.Context, e *env, tag string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := e.procs.start(tag+"-redis", nil, pinned(serverCPU, e.tools["redis-server"],
		"--bind", "127.0.0.1", "--port", port(addr), "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--dir", e.work)...)
	if err != nil {
		return nil, "", err
	}
	err = waitReady(ctx, p, 10*time.Second, func(ctx context.Context) error {
		out, err := e.procs.run(ctx, 5*time.Second, nil, "redis-cli", "-h", "127.0.0.1", "-p", port(addr), "ping")
		if err == nil && !strings.Contains(string(out), "PONG") {
			err = fmt.Errorf("redis ping: %s", out)
		}
		return err
	})
	if err != nil {
		e.procs.stop(p, time.Second)
		return nil, "", err
	}
	return p, addr, nil
}

// startOPAServer starts `opa run --server` on the server CPU with
// GOMAXPROCS=1, as a sidecar of the configuration (its CPU time counts),
// serving the policy folder dir on loopback; it returns its URL once GET
// /health answers. It leaves out the set's tests, as the gateway does.
func startOPAServer(ctx context.Context, e *env, tag, dir string) (*proc, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := e.procs.start(tag+"-opa", []string{"GOMAXPROCS=1"}, pinned(serverCPU, e.tools["opa"],
		"run", "--server", "--addr", addr, "--log-level", "error", "--skip-version-check",
		"--ignore", ".*", "--ignore", "*_test.rego", dir)...)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	if err := waitReady(ctx, p, 20*time.Second, func(ctx context.Context) error { return getOK(ctx, nil, url+"/health", nil) }); err != nil {
		e.procs.stop(p, time.Second)
		return nil, "", err
	}
	return p, url, nil
}

func startOAuth2ProxyCookie(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	return startOAuth2Proxy(ctx, e, tag, cert, false)
}

func startOAuth2ProxyRedis(ctx context.Context, e *env, tag string, cert certSet) (*server, error) {
	return startOAuth2Proxy(ctx, e, tag, cert, true)
}

// startOAuth2Proxy runs oauth2-proxy with the development IdP as its
// OIDC provider, signs the benchmark user in once, and measures with
// that session's cookie.
func startOAuth2Proxy(ctx context.Context, e *env, tag string, cert certSet, redis bool) (*server, error) {
	s := &server{base: e.base()}
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--provider=oidc", "--oidc-issuer-url=" + e.idpURL, "--client-id=oauth2-proxy", "--client-secret=" + e.clientSec,
		"--code-challenge-method=S256", "--scope=openid email profile",
		"--cookie-secret=" + e.cookieKey, "--cookie-secure=true", "--email-domain=*",
		"--redirect-url=" + e.base() + "/oauth2/callback",
		"--upstream=http://" + e.upAddr + "/",
		"--http-address=", "--https-address=" + e.sutAddr,
		"--tls-cert-file=" + cert.cert, "--tls-key-file=" + cert.key, "--tls-min-version=TLS1.3",
		"--metrics-address=" + metrics, "--skip-provider-button=true", "--reverse-proxy=false",
	}
	if redis {
		rp, raddr, err := startRedis(ctx, e, tag)
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, rp)
		args = append(args, "--session-store-type=redis", "--redis-connection-url=redis://"+raddr)
	}
	p, err := e.procs.start(tag, []string{"GOMAXPROCS=1", "SSL_CERT_FILE=" + e.caFile}, pinned(serverCPU, append([]string{e.tools["oauth2-proxy"]}, args...)...)...)
	if err != nil {
		e.stopServer(s)
		return nil, err
	}
	s.procs = append(s.procs, p)
	s.metrics = "http://" + metrics + "/metrics"
	if err := waitReady(ctx, p, readyTimeout, func(ctx context.Context) error { return getOK(ctx, e.caPool, e.base()+"/ping", nil) }); err != nil {
		e.stopServer(s)
		return nil, err
	}
	cookie, err := signIn(ctx, e, e.base()+"/oauth2/start?rd=%2Fapi%2Fcontacts%2F42")
	if err != nil {
		e.stopServer(s)
		return nil, fmt.Errorf("%s: %w; its log ends:\n%s", tag, err, p.logTail())
	}
	s.auth = append([]string{cookie}, browserHeaders...)
	return e.ready(ctx, s)
}
