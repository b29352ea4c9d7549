package proxy

import (
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/scope"
)

// ErrGatewayEndpoint is a request for one of the gateway's own endpoints
// (under ReservedPrefix): no route serves it and no policy decides it.
var ErrGatewayEndpoint = errors.New("the gateway's own endpoint (" + ReservedPrefix + "): no route and no policy")

// RouteMatcher resolves requests to routes exactly as a gateway built from
// the same configuration does in its intake and routing stages (request
// target validation and canonicalisation, Host validation, method
// override, route matching), without serving them: for tools that replay a
// request against a configuration, such as `crmgate policy eval`. It never
// identifies the caller, reads a body or calls an upstream. It is
// immutable and safe for concurrent use.
type RouteMatcher struct {
	// g runs the gateway's own intake and route stages; only router and
	// identity are set, which is all those stages read.
	g *Gateway
}

// NewRouteMatcher compiles cfg's routes; cfg must have had Defaults
// applied (config.Load does). It reports the route errors Validate would.
func NewRouteMatcher(cfg Config) (*RouteMatcher, error) {
	rt, err := compileRoutes(cfg.Routes)
	if err != nil {
		return nil, err
	}
	g := &Gateway{router: rt, identity: map[string]bool{}}
	for _, h := range cfg.Headers.Identity {
		g.identity[normName(h)] = true
	}
	return &RouteMatcher{g: g}, nil
}

// RouteMatch is what the gateway's routing established for a request: what
// the policy input's request and route fields are built from.
type RouteMatch struct {
	// Route is the matched route as the request scope carries it; its
	// Policy is the route's entrypoint ("" for the default one).
	Route *scope.Route
	// Params are the route's decoded path parameters; nil when it has none.
	Params map[string]string
	// Method is the effective method, after an allowed method override.
	Method string
	// Path is the canonical decoded path that routing matched.
	Path string
	// EscapedPath is the canonical encoding of Path sent upstream.
	EscapedPath string
	// Auth is the route's auth mode: AuthRequired, AuthOptional or
	// AuthNone.
	Auth string
	// Credentials are the credential kinds (CredSession, CredAPIKey,
	// CredBearer) the route names; empty means every kind the deployment
	// configures.
	Credentials []string

	rt *route
}

// Match resolves r as the gateway would: r.Method, r.RequestURI (the
// origin-form target as received, e.g. "/api/contacts/42?q=x"), r.Host
// and r.Header are read. A request the gateway answers itself, before any
// policy runs, is an error: an *HTTPError for a refused target, Host or
// header (400), a path no route serves (404) or a method the matching
// route does not allow (405, Header holds Allow); ErrGatewayEndpoint for
// the gateway's own endpoints.
func (m *RouteMatcher) Match(r *http.Request) (*RouteMatch, error) {
	s := &scope.Scope{}
	in, herr := m.g.intake(r, s)
	if herr != nil {
		return nil, herr
	}
	if strings.HasPrefix(s.Path, ReservedPrefix) {
		return nil, ErrGatewayEndpoint
	}
	rt, herr := m.g.route(r, s, in)
	if herr != nil {
		return nil, herr
	}
	return &RouteMatch{
		Route:       s.Route,
		Params:      s.Params,
		Method:      s.Method,
		Path:        s.Path,
		EscapedPath: s.EscapedPath,
		Auth:        rt.cfg.Auth,
		Credentials: slices.Clone(rt.cfg.Credentials),
		rt:          rt,
	}, nil
}

// RestrictsClients reports whether the route has allow_cidrs or
// deny_cidrs, so that the client's address decides whether the request
// reaches the policy.
func (rm *RouteMatch) RestrictsClients() bool { return len(rm.rt.allow) > 0 || len(rm.rt.deny) > 0 }

// CheckClient applies the route's deny_cidrs and allow_cidrs to the
// client address ip, as the gateway does before identifying the caller:
// an *HTTPError (403) when the route refuses it, else nil.
func (rm *RouteMatch) CheckClient(ip netip.Addr) error {
	if herr := checkIP(rm.rt, ip.Unmap()); herr != nil {
		return herr
	}
	return nil
}

// RequestTarget is an origin-form request target in the canonical forms
// the gateway uses.
type RequestTarget struct {
	// Path is the decoded path, as routing and the policy see it.
	Path string
	// EscapedPath is its canonical encoding, as sent upstream.
	EscapedPath string
	// RawQuery is the query as received, without "?"; validated.
	RawQuery string
}

// ParseRequestTarget validates a raw origin-form request target and
// returns its canonical forms, as the gateway's intake does for every
// request: encoded separators, dot segments in any encoding, double
// encoding, path parameters, fragments, control characters, invalid
// UTF-8 and malformed queries are refused with the errors of path.go
// (ErrDotSegment and friends), which the gateway answers with 400.
func ParseRequestTarget(raw string) (RequestTarget, error) {
	t, err := parseTarget(raw)
	if err != nil {
		return RequestTarget{}, err
	}
	return RequestTarget{Path: t.path, EscapedPath: t.escaped, RawQuery: t.rawQuery}, nil
}
