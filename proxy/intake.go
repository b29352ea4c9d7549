package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/scope"
)

// request is what intake learned of the request beyond the scope: the
// parsed target and the method override asked for, if any.
type request struct {
	target target
	// upgrade reports an Upgrade header from the client: the framing
	// guard has stopped checking this connection, so any answer but a
	// 101 must close it.
	upgrade  bool
	override string // upper-cased method override value, "" if none
	host     string // lower-case host without port
	// authority is the validated Host header as sent (with any port), for
	// rewriting the upstream's absolute redirects back to the gateway.
	authority string
}

// Errors of header validation.
var (
	ErrDuplicateHeader = errors.New("duplicate single-value header")
	ErrUpgrade         = errors.New("upgrade not allowed")
	ErrOverride        = errors.New("conflicting or unknown method override")
	ErrHost            = errors.New("invalid Host")
)

// singleValue are the folded names of headers that must appear at most
// once, in all spellings together: a gateway that checks one copy while the
// backend reads another is bypassed, and CGI-style backends read X_API_Key
// and X-API-Key as the same HTTP_X_API_KEY.
var singleValue = map[string]int{"authorization": 0, "proxy-authorization": 1, "content-type": 2, "content-length": 3,
	"transfer-encoding": 4, "host": 5, "x-api-key": 6, "upgrade": 7, "origin": 8}

// intake validates the request target, method and headers (stage 1). It
// parses each of them once; later stages use what it returns.
func (g *Gateway) intake(r *http.Request, s *scope.Scope) (*request, *HTTPError) {
	s.Method = r.Method
	if !slices.Contains(KnownMethods, r.Method) {
		s.Method = "OTHER"
		return nil, &HTTPError{Status: http.StatusMethodNotAllowed, Public: "proxy.error.method_unsupported", Outcome: "rejected",
			Header: http.Header{"Allow": {strings.Join(KnownMethods, ", ")}}}
	}
	t, err := parseTarget(r.RequestURI)
	if err != nil {
		return nil, &HTTPError{Status: http.StatusBadRequest, Public: "proxy.error.path_refused", Args: []any{err.Error()}, Err: err, Outcome: "rejected"}
	}
	s.Path, s.EscapedPath = t.path, t.escaped
	in := &request{target: t}

	host, err := canonicalHost(r.Host)
	if err != nil {
		return nil, reject(http.StatusBadRequest, "proxy.error.host_invalid", err)
	}
	in.host, in.authority = host, r.Host

	var buf [64]byte
	var seen [9]int
	for k, v := range r.Header {
		n := foldName(buf[:0], k)
		if i, ok := singleValue[string(n)]; ok {
			if seen[i] += len(v); seen[i] > 1 {
				return nil, &HTTPError{Status: http.StatusBadRequest, Public: "proxy.error.header_repeated", Args: []any{k}, Err: ErrDuplicateHeader, Outcome: "rejected"}
			}
		}
		if len(v) > 1 && g.identity[string(n)] {
			return nil, reject(http.StatusBadRequest, "proxy.error.reserved_header_repeated", ErrDuplicateHeader)
		}
		if isOverrideHeader(n) {
			for _, m := range v {
				if err := in.setOverride(m); err != nil {
					return nil, reject(http.StatusBadRequest, "proxy.error.override_invalid", err)
				}
			}
		}
	}
	for _, m := range overrideValues(t.rawQuery) {
		if err := in.setOverride(m); err != nil {
			return nil, reject(http.StatusBadRequest, "proxy.error.override_invalid", err)
		}
	}

	// Only WebSocket upgrades exist behind the gateway. h2c and anything
	// else would let a client tunnel past every later stage (h2c smuggling).
	in.upgrade = len(r.Header["Upgrade"]) > 0
	if up := r.Header.Get("Upgrade"); up != "" || r.Header.Get("Http2-Settings") != "" {
		if !strings.EqualFold(strings.TrimSpace(up), "websocket") || r.Method != http.MethodGet {
			return nil, reject(http.StatusBadRequest, "proxy.error.upgrade_refused", ErrUpgrade)
		}
	}
	return in, nil
}

func (in *request) setOverride(m string) error {
	m = strings.ToUpper(strings.TrimSpace(m))
	if !slices.Contains(KnownMethods, m) || (in.override != "" && in.override != m) {
		return ErrOverride
	}
	in.override = m
	return nil
}

// canonicalHost validates a Host header (RFC 9110 §7.2) and returns it in
// lower case without port.
func canonicalHost(h string) (string, error) {
	if h == "" {
		return "", ErrHost
	}
	host := h
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		hh, port, err := net.SplitHostPort(h)
		if err != nil {
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				hh = h[1 : len(h)-1]
			} else {
				return "", ErrHost
			}
		} else {
			for _, c := range port {
				if c < '0' || c > '9' {
					return "", ErrHost
				}
			}
		}
		host = hh
	}
	if host == "" {
		return "", ErrHost
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return strings.ToLower(host), nil
	}
	if len(host) > 253 {
		return "", ErrHost
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(isUnreserved(c) && c != '~') {
			return "", ErrHost
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return "", ErrHost
	}
	return host, nil
}

// route matches the request to a route (stage 3), applying an allowed
// method override. No route: 404; a route for the path but not the
// method: 405 with Allow.
func (g *Gateway) route(r *http.Request, s *scope.Scope, in *request) (*route, *HTTPError) {
	rt, params, allowed := g.router.match(in.host, in.target.segs, r.Method)
	if rt != nil && in.override != "" && rt.cfg.MethodOverride && in.override != r.Method {
		s.Method = in.override
		rt, params, allowed = g.router.match(in.host, in.target.segs, in.override)
		// The effective method's route must also take overrides; else the
		// override would be stripped when forwarding and the backend would
		// run the original method on a route whose checks did not run.
		if rt != nil && !rt.cfg.MethodOverride {
			return nil, reject(http.StatusBadRequest, "proxy.error.override_refused", ErrOverride)
		}
	}
	if rt == nil {
		if len(allowed) > 0 {
			return nil, &HTTPError{Status: http.StatusMethodNotAllowed, Public: "proxy.error.method_not_allowed", Outcome: "rejected",
				Header: http.Header{"Allow": {strings.Join(allowed, ", ")}}}
		}
		return nil, &HTTPError{Status: http.StatusNotFound, Public: "proxy.error.not_found", Outcome: "no_route"}
	}
	s.Route, s.Params = rt.info, params
	if in.target.nonASCII && !rt.cfg.AllowNonASCII {
		return nil, reject(http.StatusBadRequest, "proxy.error.path_non_ascii", ErrBadPathChar)
	}
	if r.Header.Get("Upgrade") != "" && !rt.cfg.WebSocket {
		return nil, reject(http.StatusBadRequest, "proxy.error.upgrade_refused", ErrUpgrade)
	}
	return rt, nil
}

// checkIP applies the route's deny and allow lists (stage 2 for the route).
func checkIP(rt *route, ip netip.Addr) *HTTPError {
	for _, p := range rt.deny {
		if p.Contains(ip) {
			return &HTTPError{Status: http.StatusForbidden, Public: "proxy.error.network_denied", Outcome: "denied"}
		}
	}
	if len(rt.allow) == 0 {
		return nil
	}
	for _, p := range rt.allow {
		if p.Contains(ip) {
			return nil
		}
	}
	return &HTTPError{Status: http.StatusForbidden, Public: "proxy.error.network_denied", Outcome: "denied"}
}

// clientAddr returns the socket peer and the client: the peer itself, or,
// when the peer is a trusted proxy, the right-most X-Forwarded-For entry
// that is not a trusted proxy. A malformed chain is not believed at all.
func (g *Gateway) clientAddr(r *http.Request) (peer, client netip.Addr) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, netip.Addr{}
	}
	peer = ap.Addr().Unmap()
	if !g.isTrusted(peer) {
		return peer, peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return peer, peer
	}
	hops := strings.Split(strings.Join(xff, ","), ",")
	client = peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer, client
		}
		client = a
		if !g.isTrusted(a) {
			return peer, a
		}
	}
	return peer, client
}

func parseHop(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}

func (g *Gateway) isTrusted(a netip.Addr) bool {
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// limitBody enforces the route's body limit (413) and refuses a method
// override hidden in a form body on routes that do not allow overrides:
// Rails, Laravel and others read _method from urlencoded forms, which
// would turn a POST the policy allowed into a DELETE.
func (g *Gateway) limitBody(w http.ResponseWriter, r *http.Request, rt *route, in *request) *HTTPError {
	limit := rt.cfg.MaxBodyBytes
	if limit == 0 {
		limit = g.cfg.Server.MaxBodyBytes
	}
	if r.ContentLength > limit {
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Public: "proxy.error.body_too_large", Outcome: "rejected"}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if rt.cfg.MethodOverride {
		return nil
	}
	kind := kindOf(r.Header.Get("Content-Type"))
	if kind == bodyOther {
		return nil
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// Some servers inflate bodies before the framework reads the form;
		// the gateway would be checking bytes the backend never parses.
		return reject(http.StatusBadRequest, "proxy.error.form_refused", ErrOverride)
	}
	if kind != bodyForm {
		r.Body = newOverrideGuard(r.Body)
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &HTTPError{Status: http.StatusRequestEntityTooLarge, Public: "proxy.error.body_too_large", Outcome: "rejected", Err: err}
		}
		if framingErr(r.Context()) == nil && errors.Is(r.Context().Err(), context.Canceled) {
			return &HTTPError{Status: StatusClientClosedRequest, Err: err, Outcome: "client_closed"}
		}
		return reject(http.StatusBadRequest, "proxy.error.body_unreadable", err)
	}
	if len(overrideValues(string(body))) > 0 {
		return reject(http.StatusBadRequest, "proxy.error.override_refused", ErrOverride)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return nil
}
