package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/redact"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session"
)

// upstream is a compiled UpstreamConfig: its URL, transport and proxy.
type upstream struct {
	// origin is scheme://host[:port] of url, as the upstream names itself
	// in absolute redirects.
	origin string
	name   string
	cfg    UpstreamConfig
	url    *url.URL
	proxy  *httputil.ReverseProxy
}

// forward is what the forwarding stage needs from earlier stages.
type forward struct {
	route *route
	up    *upstream
	in    *request
	// out is the client response's header, already holding the
	// gateway's security and cache headers.
	out http.Header
	// assertion is the signed identity assertion, "" when none is sent.
	assertion string
	// upstreamHeaders and policyTier come from the policy decision.
	upstreamHeaders map[string]string
	policyTier      string
	// peerTrusted says the socket peer is a trusted proxy.
	peerTrusted bool
	// session is the request's session record, kept for a policy's
	// session action; nil without one.
	session *session.Record
	// transform is the decision's redact and filter entries, compiled;
	// nil when the response passes untouched. redactions are the
	// entries it was compiled from, for its statistics.
	transform  *redact.Program
	redactions []policy.Redaction
}

type forwardKey struct{}

// forwardFrom returns the forwarding stage's inputs, nil before routing.
func forwardFrom(ctx context.Context) *forward {
	f, _ := ctx.Value(forwardKey{}).(*forward)
	if f == nil || f.route == nil {
		return nil
	}
	return f
}

// bufferPool recycles the proxy's copy buffers: large bodies stream through
// 32 KiB at a time without a new allocation per request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

func (g *Gateway) newUpstream(name string, c UpstreamConfig) (*upstream, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                 nil, // never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: c.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          c.MaxIdleConns,
		MaxIdleConnsPerHost:   c.MaxIdleConns,
		IdleConnTimeout:       c.IdleConnTimeout,
		ResponseHeaderTimeout: c.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   c.DialTimeout,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as they are; the gateway never decompresses
		// behind the client's back.
		DisableCompression: true,
		ForceAttemptHTTP2:  u.Scheme == "https",
	}
	if u.Scheme == "https" {
		tc, err := upstreamTLS(c, u)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	up := &upstream{name: name, cfg: c, url: u, origin: u.Scheme + "://" + u.Host}
	up.proxy = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { g.rewrite(up, pr) },
		Transport: timeoutTransport{tr},
		// Responses of unknown length (streams, exports, SSE) are flushed
		// after every write by ReverseProxy itself; known-length ones go
		// out in as few TLS records as the server's buffer allows.
		FlushInterval:  0,
		BufferPool:     &bufferPool{},
		ModifyResponse: func(res *http.Response) error { return g.modifyResponse(res) },
		ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { g.upstreamError(up, w, r, err) },
		ErrorLog:       nil,
	}
	return up, nil
}

func upstreamTLS(c UpstreamConfig, u *url.URL) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client_cert: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// timeoutTransport applies a route's own response timeout, which is shorter
// or longer than the upstream's default.
type timeoutTransport struct{ *http.Transport }

func (t timeoutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f := forwardFrom(r.Context())
	if f == nil || f.route.cfg.Timeout == 0 {
		return t.Transport.RoundTrip(r)
	}
	// A timer that cancels the request if no response headers come in
	// time; stopped as soon as they do, so streaming bodies are unbounded.
	ctx, cancel := context.WithCancelCause(r.Context())
	timer := time.AfterFunc(f.route.cfg.Timeout, func() { cancel(errRouteTimeout) })
	res, err := t.Transport.RoundTrip(r.WithContext(ctx))
	if !timer.Stop() && err != nil {
		return nil, errRouteTimeout
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	res.Body = &cancelBody{ReadCloser: res.Body, cancel: func() { cancel(nil) }}
	return res, nil
}

type timeoutError struct{}

func (timeoutError) Error() string { return "route timeout waiting for response headers" }
func (timeoutError) Timeout() bool { return true }

var errRouteTimeout error = timeoutError{}

type cancelBody struct {
	io.ReadCloser
	cancel func()
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// rewrite builds the upstream request (stage 8). httputil.ReverseProxy has
// already removed hop-by-hop headers, those named in Connection, and
// X-Forwarded-For/Host/Proto from pr.Out.
func (g *Gateway) rewrite(up *upstream, pr *httputil.ProxyRequest) {
	s := scope.From(pr.In.Context())
	f := forwardFrom(pr.In.Context())
	out := pr.Out
	out.URL.Scheme = up.url.Scheme
	out.URL.Host = up.url.Host
	// Exactly the path routing saw, in its canonical encoding.
	out.URL.Path = s.Path
	out.URL.RawPath = ""
	if s.EscapedPath != s.Path {
		out.URL.RawPath = s.EscapedPath
	}
	out.URL.RawQuery = f.in.target.rawQuery
	override := f.route.cfg.MethodOverride
	if !override && f.in.override != "" {
		out.URL.RawQuery = dropOverrideParams(out.URL.RawQuery)
	}
	out.Host = up.url.Host
	if up.cfg.PassHost {
		out.Host = pr.In.Host
	}

	h := out.Header
	var buf [64]byte
	for k := range h {
		n := foldName(buf[:0], k)
		if g.drop[string(n)] || isForwardedFamily(n) || (!override && isOverrideHeader(n)) {
			delete(h, k)
		}
	}
	if cs := h["Cookie"]; len(cs) > 0 {
		// Every Cookie line, joined into one (RFC 9113 §8.2.3 allows
		// several on HTTP/2; on HTTP/1.1 an empty first line must not hide
		// the next).
		var kept []string
		for _, c := range cs {
			if v := stripCookies(c, g.cookies); v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, "Cookie")
		} else {
			h["Cookie"] = []string{strings.Join(kept, "; ")}
		}
	}
	ip := s.ClientIP.String()
	h.Set("X-Forwarded-For", ip)
	h.Set("X-Real-Ip", ip)
	h.Set("X-Forwarded-Proto", "https")
	if f.route.host != "" {
		// Only a Host that a route's host pattern vouched for: on routes
		// for any host the client chose it, and backends that build links
		// from X-Forwarded-Host would hand them to the client's choice.
		h.Set("X-Forwarded-Host", f.in.host)
	}
	h.Set(g.ridHeader, s.ID)
	g.setCredentials(h, &g.creds[f.route.index])
	g.setIdentity(h, s, f)
	setPolicyHeaders(h, f)
	if f.transform != nil {
		prepareTransformRequest(h)
	}
	if _, ok := h["User-Agent"]; !ok {
		// Go would otherwise add its own.
		h["User-Agent"] = []string{""}
	}
}

func isOverrideHeader(n []byte) bool {
	for _, m := range methodOverrideHeaders {
		if string(n) == m {
			return true
		}
	}
	return false
}

// modifyResponse applies the decision's transform (stage 9) and response
// hygiene (stage 10). An error is rendered by upstreamError, and nothing
// of the upstream's response is sent.
func (g *Gateway) modifyResponse(res *http.Response) error {
	s := scope.From(res.Request.Context())
	f := forwardFrom(res.Request.Context())
	h := res.Header
	if s != nil {
		s.UpstreamStatus = res.StatusCode
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// The proxy writes the 101 itself on the hijacked connection.
		s.Status = http.StatusSwitchingProtocols
	} else if f != nil && f.in.upgrade {
		// An upgrade the backend refused: the connection is not reused,
		// so no bytes sent after the head are read as a next request.
		h.Set("Connection", "close")
	}
	// The backend may not set the gateway's cookies.
	if cs := h["Set-Cookie"]; len(cs) > 0 {
		kept := cs[:0]
		for _, c := range cs {
			name, _, _ := strings.Cut(c, "=")
			// A nameless cookie ("=crmgate_x=v") is sent back by browsers
			// as "crmgate_x=v": cookie tossing onto the gateway's name.
			if strings.TrimSpace(name) != "" && !isGatewayCookie(name, g.cookies) {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			h.Del("Set-Cookie")
		} else {
			h["Set-Cookie"] = kept
		}
	}
	for _, k := range g.stripResponse {
		delete(h, k)
	}
	if f != nil {
		rewriteLocation(h, f.up.origin, "https://"+f.in.authority)
	}
	if f != nil {
		cache := f.route.cfg.Cache
		if f.transform != nil && cache == "upstream" {
			// What the caller sees depends on who asked: never for
			// shared caches, whatever the upstream says.
			cache = "private"
		}
		// ReverseProxy clears the client header after relaying a 1xx
		// (103 Early Hints): set the gateway's headers again.
		g.security.apply(f.out)
		f.out[g.ridHeader] = []string{s.ID}
		presetCache(f.out, cache)
		g.security.merge(f.out, h)
		if res.StatusCode != http.StatusSwitchingProtocols {
			mergeCache(f.out, h, cache)
		}
	}
	// The gateway set its request id on the response already; an
	// upstream's echo of it would be a second copy.
	h.Del(g.ridHeader)
	if f != nil && f.transform != nil {
		return g.transformResponse(res, s, f)
	}
	return nil
}

// rewriteLocation points the upstream's absolute redirects to its own
// address back at the gateway, as the client reached it: a legacy CRM that
// believes it is http://10.0.5.20:8080 would otherwise send browsers to an
// address they cannot reach, and reveal it (nginx's proxy_redirect default).
func rewriteLocation(h http.Header, upstream, public string) {
	for _, k := range []string{"Location", "Content-Location"} {
		v := h[k]
		if len(v) != 1 {
			continue
		}
		rest, ok := strings.CutPrefix(v[0], upstream)
		if !ok || (rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#') {
			continue
		}
		h[k] = []string{public + rest}
	}
}

func (g *Gateway) upstreamError(up *upstream, w http.ResponseWriter, r *http.Request, err error) {
	var te *transformError
	if errors.As(err, &te) {
		// The transform refused the response (counted by its own
		// metric); the upstream answered.
		s := scope.From(r.Context())
		s.Outcome = te.Outcome
		level := slog.LevelWarn
		if te.Status == http.StatusNotFound {
			level = slog.LevelInfo
		}
		g.log.LogAttrs(r.Context(), level, "response refused by the transform",
			slog.String("request_id", s.ID), slog.String("upstream", up.name), slog.Int("status", te.Status), slog.String("error", te.Err.Error()))
		g.security.apply(w.Header())
		writeError(w, r, te.HTTPError)
		return
	}
	e := classifyUpstreamError(r, err)
	kind := "error"
	switch e.Status {
	case http.StatusGatewayTimeout:
		kind = "timeout"
	case StatusClientClosedRequest:
		kind = "client_closed"
	case http.StatusRequestEntityTooLarge:
		kind = "body_too_large"
	}
	g.metrics.upstream.WithLabelValues(up.name, kind).Inc()
	if s := scope.From(r.Context()); s != nil {
		s.Outcome = e.Outcome
		level := slog.LevelWarn
		if e.Status == StatusClientClosedRequest {
			level = slog.LevelInfo
		}
		g.log.LogAttrs(r.Context(), level, "upstream request failed",
			slog.String("request_id", s.ID), slog.String("upstream", up.name), slog.String("error", err.Error()))
	}
	g.security.apply(w.Header())
	writeError(w, r, e)
}
