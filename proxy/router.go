package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/scope"
)

// segKind is what one pattern segment matches.
type segKind uint8

const (
	segLiteral segKind = iota // exactly this text
	segParam                  // exactly one non-empty segment
	segTail                   // the rest of the path: one or more segments
)

type segment struct {
	kind segKind
	text string // literal text, or parameter name
}

// route is a compiled RouteConfig: everything the request path needs,
// parsed once.
type route struct {
	cfg       RouteConfig
	index     int
	host      string // "" any, "x.y" exact, ".y" wildcard suffix
	segs      []segment
	methods   []string
	allow     []netip.Prefix
	deny      []netip.Prefix
	info      *scope.Route
	paramKeys []string
}

// parsePattern turns "/api/contacts/{id}" into segments. Literal segments
// must already be in canonical form (no percent-encoding, no dot segments),
// as the paths they are compared with are.
func parsePattern(p string) ([]segment, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%q must start with /", p)
	}
	if p == "/" {
		return []segment{{kind: segLiteral, text: ""}}, nil
	}
	parts := strings.Split(p[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := map[string]bool{}
	for i, s := range parts {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			name := s[1 : len(s)-1]
			kind := segParam
			if n, ok := strings.CutSuffix(name, "..."); ok {
				if i != len(parts)-1 {
					return nil, fmt.Errorf("%q: {%s} must be the last segment", p, name)
				}
				name, kind = n, segTail
			}
			if !routeIDRe.MatchString(name) || strings.ContainsAny(name, ".-") {
				return nil, fmt.Errorf("%q: parameter name %q must be letters, digits and _", p, name)
			}
			if names[name] {
				return nil, fmt.Errorf("%q: parameter {%s} appears twice", p, name)
			}
			names[name] = true
			segs = append(segs, segment{kind: kind, text: name})
		case strings.ContainsAny(s, "{}"):
			return nil, fmt.Errorf("%q: a parameter must be a whole segment, like /{id}", p)
		case s == "" && i != len(parts)-1:
			return nil, fmt.Errorf("%q has an empty segment (//)", p)
		case s == "." || s == "..":
			return nil, fmt.Errorf("%q has a dot segment", p)
		default:
			if err := checkLiteral(s); err != nil {
				return nil, fmt.Errorf("%q: %v", p, err)
			}
			segs = append(segs, segment{kind: segLiteral, text: s})
		}
	}
	return segs, nil
}

func checkLiteral(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == ';' || c == '\\' || c == '#' || c == '?' || c <= ' ' || c >= 0x7f {
			return fmt.Errorf("segment %q: write literal segments decoded, with only unreserved and sub-delimiter characters", s)
		}
	}
	return nil
}

// router matches requests to compiled routes.
type router struct {
	routes []*route
}

func compileRoutes(cfgs []RouteConfig) (*router, error) {
	rt := &router{}
	var errs []error
	for i, c := range cfgs {
		segs, err := parsePattern(c.Path)
		if err != nil {
			errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].path", i), "%v", err))
			continue
		}
		if c.CaseInsensitive {
			for j := range segs {
				if segs[j].kind == segLiteral {
					segs[j].text = strings.ToLower(segs[j].text)
				}
			}
		}
		r := &route{cfg: c, index: i, segs: segs, methods: c.Methods,
			allow: parsePrefixes(c.AllowCIDRs), deny: parsePrefixes(c.DenyCIDRs)}
		switch {
		case c.Host == "":
		case strings.HasPrefix(c.Host, "*."):
			r.host = c.Host[1:]
		default:
			r.host = c.Host
		}
		for _, s := range segs {
			if s.kind != segLiteral {
				r.paramKeys = append(r.paramKeys, s.text)
			}
		}
		r.info = &scope.Route{ID: c.ID, Upstream: c.Upstream, Tags: c.Tags, Policy: c.Policy, Pattern: c.Path, Websocket: c.WebSocket}
		rt.routes = append(rt.routes, r)
	}
	// Two routes that match the same requests would make the outcome depend
	// on their order, which a reviewer cannot see: refuse them.
	for i, a := range rt.routes {
		for _, b := range rt.routes[i+1:] {
			if a.host == b.host && sameShape(a.segs, b.segs, a.cfg.CaseInsensitive || b.cfg.CaseInsensitive) && overlap(a.methods, b.methods) {
				errs = append(errs, fielderr.New(fmt.Sprintf("routes[%d].path", b.index),
					"%q matches the same requests as routes[%d] (%q) for some method; make them differ in host, path or methods", b.cfg.Path, a.index, a.cfg.Path))
			}
		}
	}
	// Most specific first, so matching can stop at the first hit.
	slices.SortStableFunc(rt.routes, func(a, b *route) int { return compareSpecificity(a, b) })
	return rt, errors.Join(errs...)
}

func sameShape(a, b []segment, fold bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].kind != b[i].kind {
			return false
		}
		if a[i].kind == segLiteral && a[i].text != b[i].text && !(fold && strings.EqualFold(a[i].text, b[i].text)) {
			return false
		}
	}
	return true
}

func overlap(a, b []string) bool {
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

// compareSpecificity orders routes: exact host before wildcard before any,
// then segment by segment literal before parameter before tail, then longer
// patterns first, then configuration order.
func compareSpecificity(a, b *route) int {
	if d := hostRank(a.host) - hostRank(b.host); d != 0 {
		return d
	}
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if d := int(a.segs[i].kind) - int(b.segs[i].kind); d != 0 {
			return d
		}
	}
	if d := len(b.segs) - len(a.segs); d != 0 {
		return d
	}
	return a.index - b.index
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 2
	case strings.HasPrefix(h, "."):
		return 1
	}
	return 0
}

// match finds the route for host (lower case, no port), the decoded path
// segments and method. When the path matches but no route allows the
// method, it returns nil and the methods that would have been allowed.
func (rt *router) match(host string, segs []string, method string) (*route, map[string]string, []string) {
	var allowed []string
	for _, r := range rt.routes {
		if !r.matchHost(host) {
			continue
		}
		if !r.matchPath(segs) {
			continue
		}
		if !slices.Contains(r.methods, method) {
			for _, m := range r.methods {
				if !slices.Contains(allowed, m) {
					allowed = append(allowed, m)
				}
			}
			continue
		}
		return r, r.params(segs), nil
	}
	return nil, nil, allowed
}

func (r *route) matchHost(host string) bool {
	switch {
	case r.host == "":
		return true
	case r.host[0] == '.':
		return len(host) > len(r.host) && strings.HasSuffix(host, r.host)
	}
	return host == r.host
}

func (r *route) matchPath(segs []string) bool {
	last := len(r.segs) - 1
	if last >= 0 && r.segs[last].kind == segTail {
		if len(segs) < len(r.segs) || (len(segs) == len(r.segs) && segs[last] == "") {
			return false
		}
	} else if len(segs) != len(r.segs) {
		return false
	}
	for i, s := range r.segs {
		switch s.kind {
		case segLiteral:
			if segs[i] != s.text && !(r.cfg.CaseInsensitive && strings.EqualFold(segs[i], s.text)) {
				return false
			}
		case segParam:
			if segs[i] == "" {
				return false
			}
		case segTail:
			return true
		}
	}
	return true
}

func (r *route) params(segs []string) map[string]string {
	if len(r.paramKeys) == 0 {
		return nil
	}
	p := make(map[string]string, len(r.paramKeys))
	for i, s := range r.segs {
		switch s.kind {
		case segParam:
			p[s.text] = segs[i]
		case segTail:
			p[s.text] = strings.Join(segs[i:], "/")
		}
	}
	return p
}
