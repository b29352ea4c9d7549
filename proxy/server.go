package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/net/http2"

	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/proxy/framing"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// connInfo is what the listener learned of a connection at its handshake.
type connInfo struct {
	tls *scope.TLSInfo
	// h1 is the framing guard of an HTTP/1 connection, nil for HTTP/2.
	h1 *framing.Conn
}

// framingErr reports the framing violation of the request's connection.
func framingErr(ctx context.Context) error {
	if c := connInfoFrom(ctx); c != nil && c.h1 != nil {
		return c.h1.Err()
	}
	return nil
}

type connInfoKey struct{}

func withConnInfo(ctx context.Context, c *connInfo) context.Context {
	return context.WithValue(ctx, connInfoKey{}, c)
}

func connInfoFrom(ctx context.Context) *connInfo {
	c, _ := ctx.Value(connInfoKey{}).(*connInfo)
	return c
}

// Server runs the client-facing listeners. It terminates TLS itself so that
// it sees every ClientHello (for fingerprinting) and can put the HTTP/1
// framing guard between TLS and Go's HTTP/1 parser; HTTP/2 connections go to
// the HTTP/2 server directly. With server.proxy_protocol, the PROXY header
// of a load balancer is read before TLS, and its client address is the
// connection's remote address from then on.
type Server struct {
	cfg       Config
	log       *slog.Logger
	handler   http.Handler
	challenge func(http.Handler) http.Handler
	tls       *tls.Config
	metrics   *metrics
	// pp reads the PROXY protocol header of load balancers; nil: off.
	pp *proxyProtocol

	h1       *http.Server
	h2       *http2.Server
	h1ln     *connQueue
	redirect *http.Server

	ln, httpLn net.Listener
	hellos     sync.Map // raw net.Conn → *scope.ClientHello, during handshakes
	handshakes counter  // TLS handshakes in progress
	h2conns    counter  // HTTP/2 connections being served
	ctx        context.Context
	cancel     context.CancelFunc
}

// NewServer prepares the listeners for g. tlsConf supplies certificates and
// protocol settings; challenge wraps the plain-HTTP handler so ACME HTTP-01
// challenges are answered (nil: none). Nothing listens before Listen.
func (g *Gateway) NewServer(tlsConf *tls.Config, challenge func(http.Handler) http.Handler) *Server {
	s := &Server{cfg: g.cfg, log: g.log, handler: g, challenge: challenge, metrics: g.metrics}
	s.pp = newProxyProtocol(g.cfg.Server.ProxyProtocol, g.log, g.metrics)
	if s.challenge == nil {
		s.challenge = func(h http.Handler) http.Handler { return h }
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tls = tlsConf.Clone()
	if !slices.Contains(s.tls.NextProtos, "h2") {
		s.tls.NextProtos = append([]string{"h2", "http/1.1"}, s.tls.NextProtos...)
	}
	s.tls.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		s.hellos.Store(h.Conn, copyHello(h))
		return nil, nil
	}
	errLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	s.h1ln = newConnQueue()
	s.h1 = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: g.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.Server.IdleTimeout,
		MaxHeaderBytes:    g.cfg.Server.MaxHeaderBytes,
		ErrorLog:          errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*h1Conn); ok {
				return withConnInfo(ctx, hc.info)
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateHijacked:
				if hc, ok := c.(*h1Conn); ok {
					hc.Passthrough()
				}
				s.metrics.conns.Dec()
			case http.StateClosed:
				if hc, ok := c.(*h1Conn); ok {
					g.auditRefusedHead(hc)
				}
				s.metrics.conns.Dec()
			}
		},
	}
	s.h2 = &http2.Server{
		IdleTimeout:          g.cfg.Server.IdleTimeout,
		MaxConcurrentStreams: 250,
	}
	// Links the HTTP/2 server to s.h1's graceful shutdown.
	_ = http2.ConfigureServer(s.h1, s.h2)
	if g.cfg.Listen.HTTP != "" {
		s.redirect = &http.Server{
			Handler:           s.challenge(http.HandlerFunc(s.redirectToHTTPS)),
			ReadHeaderTimeout: g.cfg.Server.ReadHeaderTimeout,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       g.cfg.Server.IdleTimeout,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          errLog,
		}
	}
	return s
}

// Listen binds the listeners, so that start-up fails early and clearly when
// an address is taken.
func (s *Server) Listen() error {
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.cfg.Listen.HTTPS)
		if err != nil {
			return fmt.Errorf("listen.https: %w", err)
		}
		s.ln = ln
	}
	if _, wrapped := s.ln.(*proxyproto.Listener); s.pp != nil && !wrapped {
		// Before TLS: the handshake reads the stream after the header.
		s.ln = s.pp.wrap(s.ln)
	}
	ln := s.ln
	if s.redirect != nil {
		hl, err := net.Listen("tcp", s.cfg.Listen.HTTP)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen.http: %w", err)
		}
		s.httpLn = hl
	}
	return nil
}

// UseListener makes Listen serve HTTPS on ln, already bound, instead of
// binding listen.https: for a caller that must know the port before the
// configuration is complete.
func (s *Server) UseListener(ln net.Listener) { s.ln = ln }

// Addr is the HTTPS listener's address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HTTPAddr is the plain-HTTP listener's address, nil when there is none.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Serve accepts connections until ctx ends, then shuts down gracefully
// within the configured shutdown timeout.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- s.h1.Serve(s.h1ln) }()
	if s.httpLn != nil {
		go func() { errc <- s.redirect.Serve(s.httpLn) }()
	}
	go func() { errc <- s.acceptLoop() }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) shutdown() {
	// Stop accepting, let requests in flight finish (HTTP/2 connections
	// get a GOAWAY through h1's shutdown hooks), and only then cancel the
	// connections' base context.
	defer s.cancel()
	s.ln.Close()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.h1.Shutdown(sctx); err != nil {
			s.h1.Close()
		}
	})
	if s.redirect != nil {
		wg.Go(func() {
			if err := s.redirect.Shutdown(sctx); err != nil {
				s.redirect.Close()
			}
		})
	}
	wg.Wait()
	// h1's shutdown sent HTTP/2 connections a GOAWAY but does not wait
	// for them; they close once their last stream is answered.
	select {
	case <-s.h2conns.idle():
	case <-sctx.Done():
	}
	s.cancel()
	<-s.handshakes.idle()
}

// counter counts things in progress and tells when none are. Unlike a
// sync.WaitGroup it may be incremented while another goroutine waits.
type counter struct {
	mu   sync.Mutex
	n    int
	zero chan struct{}
}

func (c *counter) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.zero = make(chan struct{})
	}
	c.n++
}

func (c *counter) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.zero)
	}
}

// idle returns a channel that is closed when the count is zero.
func (c *counter) idle() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.zero
}

func (s *Server) acceptLoop() error {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off, keep serving.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "error", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.metrics.conns.Inc()
		s.handshakes.add()
		go s.handshake(c)
	}
}

// handshake completes TLS on raw and hands the connection to the HTTP/2 or
// HTTP/1 server by the negotiated protocol.
func (s *Server) handshake(raw net.Conn) {
	defer s.handshakes.done()
	defer s.hellos.Delete(raw)
	deadline := time.Now().Add(s.cfg.Server.HandshakeTimeout)
	_ = raw.SetDeadline(deadline)
	if pc, ok := raw.(*proxyproto.Conn); ok && !s.pp.admit(s.ctx, pc, deadline) {
		s.metrics.conns.Dec()
		raw.Close()
		return
	}
	tc := tls.Server(raw, s.tls)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.metrics.handshakes.WithLabelValues("error", "").Inc()
		s.metrics.conns.Dec()
		s.log.Debug("tls handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	info := &connInfo{tls: &scope.TLSInfo{
		Version: st.Version, CipherSuite: st.CipherSuite, ALPN: st.NegotiatedProtocol, ServerName: st.ServerName,
	}}
	if h, ok := s.hellos.Load(raw); ok {
		info.tls.Hello = h.(*scope.ClientHello)
		// Once per connection: every request on it, and every stream of
		// an HTTP/2 connection, is compared with the session's binding
		// using this value (a resumed handshake computes the same one).
		info.tls.JA4, _ = fingerprint.StableJA4(info.tls.Hello)
	}
	s.metrics.handshakes.WithLabelValues("ok", st.NegotiatedProtocol).Inc()
	switch st.NegotiatedProtocol {
	case "h2":
		s.h2conns.add()
		go func() {
			defer s.h2conns.done()
			defer s.metrics.conns.Dec()
			s.h2.ServeConn(newH2Watch(tc, s.cfg.Server.ReadHeaderTimeout), &http2.ServeConnOpts{
				Context:    withConnInfo(s.ctx, info),
				BaseConfig: s.h1,
				Handler:    s.handler,
			})
		}()
	case "acme-tls/1":
		// The certificate source answered the TLS-ALPN-01 challenge in
		// the handshake; nothing follows on this connection.
		s.metrics.conns.Dec()
		tc.Close()
	default:
		fc := framing.NewConn(tc, framing.Limits{MaxHeadBytes: s.cfg.Server.MaxHeaderBytes + 4096})
		info.h1 = fc
		hc := &h1Conn{Conn: fc, info: info}
		if !s.h1ln.push(hc, s.ctx) {
			s.metrics.conns.Dec()
			tc.Close()
		}
	}
}

// h1Conn is an HTTP/1 connection behind the framing guard, carrying what
// the handshake learned.
type h1Conn struct {
	*framing.Conn
	info *connInfo
}

func copyHello(h *tls.ClientHelloInfo) *scope.ClientHello {
	return &scope.ClientHello{
		CipherSuites:      slices.Clone(h.CipherSuites),
		SupportedCurves:   curves(h.SupportedCurves),
		SupportedPoints:   slices.Clone(h.SupportedPoints),
		SignatureSchemes:  schemes(h.SignatureSchemes),
		SupportedProtos:   slices.Clone(h.SupportedProtos),
		SupportedVersions: slices.Clone(h.SupportedVersions),
		Extensions:        slices.Clone(h.Extensions),
		ServerName:        h.ServerName,
	}
}

func curves(cs []tls.CurveID) []uint16 {
	out := make([]uint16, len(cs))
	for i, c := range cs {
		out[i] = uint16(c)
	}
	return out
}

func schemes(ss []tls.SignatureScheme) []uint16 {
	out := make([]uint16, len(ss))
	for i, c := range ss {
		out[i] = uint16(c)
	}
	return out
}

// redirectToHTTPS answers the plain-HTTP listener: safe methods are sent to
// the same path over HTTPS; others are refused, since their body already
// crossed the network in clear.
func (s *Server) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	host, err := canonicalHost(r.Host)
	t, terr := parseTarget(r.RequestURI)
	if err != nil || terr != nil {
		lang := i18n.For(r)
		i18n.SetHeaders(w.Header(), lang)
		http.Error(w, i18n.Status(lang, http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		lang := i18n.For(r)
		i18n.SetHeaders(w.Header(), lang)
		http.Error(w, i18n.T(lang, "proxy.https.use_https"), http.StatusBadRequest)
		return
	}
	port := s.cfg.Listen.PublicHTTPSPort
	if port == 0 && s.ln != nil {
		if ap, ok := s.ln.Addr().(*net.TCPAddr); ok {
			port = ap.Port
		}
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != 0 && port != 443 {
		hostport = net.JoinHostPort(host, strconv.Itoa(port))
	}
	loc := "https://" + hostport + t.escaped
	if t.rawQuery != "" {
		loc += "?" + t.rawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// connQueue is a net.Listener fed with connections that finished their
// handshake, for the HTTP/1 server.
type connQueue struct {
	ch     chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn, ctx context.Context) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.closer.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// Close releases the listeners of a server that was bound but will not
// serve (start-up failed after Listen).
func (s *Server) Close() error {
	s.cancel()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	if s.httpLn != nil {
		_ = s.httpLn.Close()
	}
	return err
}
