package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/crmgate/crmgate/fielderr"
)

// ProxyProtocolConfig names the L4 load balancers that send the PROXY
// protocol header (HAProxy's proxy-protocol.txt, v1 and v2) ahead of the
// client's TLS bytes. The zero value is off: nothing is read before the TLS
// handshake, and a connection that opens with a PROXY header fails it.
type ProxyProtocolConfig struct {
	// From lists the balancers' addresses or CIDRs; empty is off.
	From []string `yaml:"from" jsonschema_description:"Addresses or CIDRs of the load balancers that send a PROXY header; the client address it carries is then the client's everywhere (rate limits, route allow_cidrs/deny_cidrs, the session's ip_prefix binding, X-Forwarded-For to the CRM, logs and audit). A connection from these addresses must open with a header, or it is refused (a balancer that stops sending it fails closed instead of every client sharing its address); a LOCAL header (v2 LOCAL, v1 UNKNOWN: the balancer's own health checks) keeps the balancer's address. A connection from any other address that opens with a PROXY header is refused as a spoofing attempt; without one it is served as before. Empty: off. 0.0.0.0/0 and ::/0 are refused."`
	// HeaderTimeout bounds the wait for a balancer's header.
	HeaderTimeout time.Duration `yaml:"header_timeout" jsonschema_description:"Longest wait for the whole PROXY header on a connection from a balancer; the connection is refused after it. The header counts against handshake_timeout too. Default 5s."`
}

// Enabled reports whether the HTTPS listener reads PROXY headers.
func (c ProxyProtocolConfig) Enabled() bool { return len(c.From) > 0 }

// Defaults fills unset fields with their defaults.
func (c *ProxyProtocolConfig) Defaults() {
	setDur(&c.HeaderTimeout, 5*time.Second)
}

// Validate reports every problem at once, with paths relative to
// server.proxy_protocol.
func (c ProxyProtocolConfig) Validate() error {
	var errs []error
	for i, s := range c.From {
		p, err := parsePrefix(s)
		switch {
		case err != nil:
			errs = append(errs, fielderr.New(fmt.Sprintf("from[%d]", i), "%v", err))
		case p.Bits() == 0:
			errs = append(errs, fielderr.New(fmt.Sprintf("from[%d]", i),
				"%q is every address: anyone who can connect could claim any client address; list the load balancers' addresses or their subnet", s))
		}
	}
	if c.HeaderTimeout < 0 {
		errs = append(errs, fielderr.New("header_timeout", "must be positive, got %s", c.HeaderTimeout))
	}
	return errors.Join(errs...)
}

// Reasons a connection is refused at its PROXY header: the values of the
// reason label of crmgate_proxy_protocol_refused_total.
const (
	// refusedUntrusted: a PROXY header from an address not in from.
	refusedUntrusted = "untrusted_source"
	// refusedMissing: a connection from a balancer without a header.
	refusedMissing = "missing_header"
	// refusedMalformed: a balancer's header that is not valid (cut short,
	// too long, bad TLVs, or not a TCP client address).
	refusedMalformed = "malformed"
	// refusedTimeout: a balancer's header not complete in header_timeout.
	refusedTimeout = "timeout"
)

// errProxyTransport is a PROXY header whose client is not a TCP address.
var errProxyTransport = errors.New("proxy protocol: the header's client is not a TCP address (TCP4 or TCP6)")

// proxyProtocol decides whose PROXY header the HTTPS listener believes and
// what a refusal is. The header itself is parsed by
// github.com/pires/go-proxyproto, which also keeps the bytes after it for
// TLS and answers RemoteAddr with the header's client from then on, so the
// HTTP servers, the intake's client address and everything after it see
// the client without knowing about the header.
type proxyProtocol struct {
	from    []netip.Prefix
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics
}

// newProxyProtocol returns nil when cfg is off.
func newProxyProtocol(cfg ProxyProtocolConfig, log *slog.Logger, m *metrics) *proxyProtocol {
	if !cfg.Enabled() {
		return nil
	}
	// Present from the start, so that a rate over them is 0, not absent.
	for _, r := range []string{refusedUntrusted, refusedMissing, refusedMalformed, refusedTimeout} {
		m.proxyRefused.WithLabelValues(r)
	}
	return &proxyProtocol{from: parsePrefixes(cfg.From), timeout: cfg.HeaderTimeout, log: log, metrics: m}
}

// wrap puts the PROXY header reader between ln and TLS. Accept only
// decides, by the peer's address, whether a header is required or
// forbidden; the header is read in admit, on the connection's own
// goroutine.
func (p *proxyProtocol) wrap(ln net.Listener) net.Listener {
	return &proxyproto.Listener{
		Listener:       ln,
		ConnPolicy:     p.policy,
		ValidateHeader: validateProxyHeader,
		// admit sets the header's deadline itself: the library's own timer
		// reports a timeout as a missing header, and they are different
		// faults (a slow or stuck sender, a balancer not sending it).
		ReadHeaderTimeout: -1,
	}
}

func (p *proxyProtocol) policy(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
	if p.balancer(o.Upstream) {
		return proxyproto.REQUIRE, nil
	}
	return proxyproto.REJECT, nil
}

func (p *proxyProtocol) balancer(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, pr := range p.from {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}

// validateProxyHeader accepts what a TCP load balancer sends: a TCP client
// address, or a LOCAL connection of its own (v2 LOCAL, v1 UNKNOWN), which
// keeps the socket peer. UDP and Unix addresses are no client of an HTTPS
// listener. TLVs must be well-formed though the gateway reads none.
func validateProxyHeader(h *proxyproto.Header) error {
	if !h.Command.IsLocal() {
		if _, _, ok := h.TCPAddrs(); !ok {
			return errProxyTransport
		}
	}
	if _, err := h.TLVs(); err != nil {
		return err
	}
	return nil
}

// admit reads c's PROXY header before any of its TLS: within deadline (the
// handshake's) and, from a balancer, within the header timeout; until ctx
// ends (shutdown). It reports whether the connection may go on to its
// handshake; the caller closes a refused one. A refusal at the header is
// counted by reason and logged; a direct client that fails before sending
// anything fails its handshake and is counted as such.
func (p *proxyProtocol) admit(ctx context.Context, c *proxyproto.Conn, deadline time.Time) bool {
	fromBalancer := c.ProxyHeaderPolicy == proxyproto.REQUIRE
	if fromBalancer {
		_ = c.SetReadDeadline(earliest(time.Now().Add(p.timeout), deadline))
	}
	// Shutdown waits for handshakes in progress; it must not wait for a
	// header that has not come.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	// The library reads the header on a connection's first use and returns
	// its error from every read; a read of nothing runs it without taking
	// any of the TLS bytes that follow.
	_, err := c.Read(nil)
	stop()
	if fromBalancer {
		_ = c.SetReadDeadline(deadline)
	}
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		if h := c.ProxyHeader(); h != nil {
			cmd := "proxy"
			if h.Command.IsLocal() {
				cmd = "local"
			}
			p.metrics.proxyHeaders.WithLabelValues(strconv.Itoa(int(h.Version)), cmd).Inc()
		}
		return true
	}
	peer := c.Raw().RemoteAddr().String()
	reason := refusal(err, fromBalancer)
	if reason == "" {
		p.metrics.handshakes.WithLabelValues("error", "").Inc()
		p.log.Debug("tls handshake failed", "remote", peer, "error", err)
		return false
	}
	p.metrics.proxyRefused.WithLabelValues(reason).Inc()
	msg := "proxy protocol: connection refused"
	if reason == refusedUntrusted {
		msg = "proxy protocol: header from an address not in server.proxy_protocol.from refused (spoofing attempt?)"
	}
	p.log.Warn(msg, "reason", reason, "peer", peer, "error", err)
	return false
}

// refusal names why a connection's header was refused, or "" when a direct
// client's connection failed before it said anything (a timeout, a reset,
// a close): with REJECT, every other error means its bytes opened with a
// PROXY signature.
func refusal(err error, fromBalancer bool) string {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	switch {
	case fromBalancer && timeout:
		return refusedTimeout
	case fromBalancer && errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return refusedMissing
	case fromBalancer:
		return refusedMalformed
	case errors.Is(err, proxyproto.ErrSuperfluousProxyHeader):
		return refusedUntrusted
	case timeout, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, new(*net.OpError)):
		return ""
	}
	return refusedUntrusted
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
