package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/proxy"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// evalRequestID is the request id of the inputs eval builds.
const evalRequestID = "policy-eval"

// requestFlags describe a request to `crmgate policy eval` the way the
// gateway would see it: the request line and headers, the route (from a
// configuration, or by hand) and the caller.
type requestFlags struct {
	fs *flag.FlagSet

	request, config, host, clientIP, at string
	headers                             listFlag
	route                               string
	params, tags                        listFlag

	as, apiKey, subject string
	roles, groups, amr  listFlag
	scopes              listFlag
	email, acr, tier    string
	authAge             time.Duration

	// changed and browser describe the session's fingerprint check.
	changed listFlag
	browser string
}

// requestFlagNames are every flag of requestFlags, for refusing them
// next to --input.
var requestFlagNames = []string{"request", "c", "host", "client-ip", "time", "header", "route", "param", "tag",
	"as", "api-key", "subject", "role", "group", "amr", "scope", "email", "acr", "tier", "auth-age",
	"changed", "browser"}

func (r *requestFlags) register(fs *flag.FlagSet) {
	r.fs = fs
	fs.StringVar(&r.request, "request", "", "the request line: 'METHOD PATH[?QUERY]'")
	fs.StringVar(&r.config, "c", "", "gateway configuration whose routing resolves the route")
	fs.StringVar(&r.host, "host", "localhost", "Host header")
	fs.StringVar(&r.clientIP, "client-ip", "", "the client's address")
	fs.StringVar(&r.at, "time", "", "when the request arrives, RFC 3339 (default now)")
	fs.Var(&r.headers, "header", "request header 'Name: value' (repeatable)")
	fs.StringVar(&r.route, "route", "", "route id, without -c")
	fs.Var(&r.params, "param", "route parameter k=v, without -c (repeatable)")
	fs.Var(&r.tags, "tag", "route tag, without -c (repeatable)")
	fs.StringVar(&r.as, "as", "", "the caller: USER, key:NAME, service:ID or anonymous")
	fs.StringVar(&r.apiKey, "api-key", "", "the caller is the API key NAME (as --as key:NAME)")
	fs.StringVar(&r.subject, "subject", "", "JSON file with input.subject")
	fs.Var(&r.roles, "role", "role of a user or service client (repeatable)")
	fs.Var(&r.groups, "group", "group of a user (repeatable)")
	fs.Var(&r.amr, "amr", "authentication method of a user (repeatable; default pwd)")
	fs.Var(&r.scopes, "scope", "scope of an API key (repeatable)")
	fs.StringVar(&r.email, "email", "", "e-mail address of a user")
	fs.StringVar(&r.acr, "acr", "", "authentication context class of a user")
	fs.StringVar(&r.tier, "tier", "", "rate-limit tier of an API key")
	fs.Var(&r.changed, "changed", "fingerprint component of the user's session that changed since sign-in: ja4, user_agent, ip_prefix, accept_language (repeatable; default none: the session matches)")
	fs.StringVar(&r.browser, "browser", "", "the browser bound at sign-in and seen now, 'BOUND,NOW' (e.g. chrome/130,chrome/131)")
	fs.DurationVar(&r.authAge, "auth-age", 0, "time since a user signed in")
}

// setFlags lists the request flags given on the command line.
func (r *requestFlags) setFlags(fs *flag.FlagSet) []string { return flagNames(fs, requestFlagNames...) }

// evalRequest is the input eval built, and the entrypoint the route or
// configuration names ("" for none).
type evalRequest struct {
	input      *policy.Input
	entrypoint string
	// evalTimeout is the configuration's policy.eval_timeout, 0 without
	// one.
	evalTimeout time.Duration
}

// build makes the input the gateway would build for the request: routing
// as the configuration says (or the route given by hand), the caller as
// identification would establish it, the policy's header allow-list. A
// request the gateway would answer before any policy runs (400, 401, 403,
// 404, 405) is an error saying so.
func (r *requestFlags) build(stderr io.Writer) (*evalRequest, error) {
	method, target, ok := strings.Cut(strings.TrimSpace(r.request), " ")
	target = strings.TrimSpace(target)
	if !ok || method == "" || target == "" || strings.ContainsAny(target, " \t") {
		return nil, usageError(stderr, "eval", "--request %q: want 'METHOD PATH[?QUERY]', e.g. 'GET /api/contacts/42'", r.request)
	}
	if !slices.Contains(proxy.KnownMethods, method) {
		if up := strings.ToUpper(method); slices.Contains(proxy.KnownMethods, up) {
			return nil, usageError(stderr, "eval", "--request: methods are case-sensitive; did you mean %s?", up)
		}
		return nil, fmt.Errorf("the gateway answers 405 to method %s before any policy runs (it forwards %s)", method, strings.Join(proxy.KnownMethods, ", "))
	}
	if !strings.HasPrefix(target, "/") {
		return nil, usageError(stderr, "eval", "--request %q: the path must start with / (the gateway refuses absolute URLs)", r.request)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("the gateway's HTTP server refuses the target %q with 400 before any policy runs: %v", target, err)
	}
	hreq := &http.Request{Method: method, RequestURI: target, URL: u, Host: r.host, Header: http.Header{}}
	for _, h := range r.headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value):
			return nil, usageError(stderr, "eval", "--header %q: want 'Name: value'", h)
		case strings.EqualFold(name, "host"):
			return nil, usageError(stderr, "eval", "--header %q: give the host with --host", h)
		}
		if err := allowableHeader(name); err != nil {
			return nil, usageError(stderr, "eval", "--header %q: %v; the caller is given by --as or --subject", h, err)
		}
		hreq.Header.Add(name, value)
	}

	var f *config.File
	if r.config != "" {
		if set := flagNames(r.fs, "route", "param", "tag"); len(set) > 0 {
			return nil, usageError(stderr, "eval", "%s describe the route by hand; with -c the configuration's routing finds it", strings.Join(set, ", "))
		}
		if f, err = loadPolicyConfig(r.config, stderr); err != nil {
			return nil, err
		}
	}
	rm, err := r.resolveRoute(hreq, f, stderr)
	if err != nil {
		return nil, err
	}

	now := time.Now().UTC().Truncate(time.Second)
	if r.at != "" {
		if now, err = time.Parse(time.RFC3339, r.at); err != nil {
			return nil, usageError(stderr, "eval", "--time %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z", r.at)
		}
		now = now.UTC()
	}
	sub, err := r.caller(now, stderr)
	if err != nil {
		return nil, err
	}
	if f != nil {
		if sub, err = applyRouteAuth(f, rm, sub, stderr); err != nil {
			return nil, err
		}
	}
	sc := &scope.Scope{ID: evalRequestID, Start: now, Method: rm.Method, Path: rm.Path, EscapedPath: rm.EscapedPath,
		Route: rm.Route, Params: rm.Params, Subject: sub}
	if sub.Kind == scope.KindUser {
		// A signed-in user's browser session began when they signed in,
		// bound to the client that did.
		sc.Session = &scope.Session{Created: sub.AuthTime, Fingerprint: scope.FingerprintCheck{Bound: true, Match: len(r.changed) == 0}}
		fp := &sc.Session.Fingerprint
		for _, c := range r.changed {
			if !fingerprint.Known(c) {
				return nil, usageError(stderr, "eval", "--changed %q is not a fingerprint component (ja4, user_agent, ip_prefix, accept_language)", c)
			}
			fp.Changed = append(fp.Changed, c)
		}
		slices.Sort(fp.Changed)
		fp.Changed = slices.Compact(fp.Changed)
		if r.browser != "" {
			was, now, ok := strings.Cut(r.browser, ",")
			if !ok {
				return nil, usageError(stderr, "eval", "--browser %q is not BOUND,NOW (e.g. chrome/130,chrome/131)", r.browser)
			}
			fp.BoundUserAgent, fp.UserAgent = was, now
		}
	} else if len(r.changed) > 0 || r.browser != "" {
		return nil, usageError(stderr, "eval", "--changed and --browser describe a signed-in user's session; the caller is %s", sub.Kind)
	}
	if r.clientIP != "" {
		ip, err := netip.ParseAddr(r.clientIP)
		if err != nil {
			return nil, usageError(stderr, "eval", "--client-ip %q is not an IP address", r.clientIP)
		}
		sc.ClientIP = ip.Unmap()
	}
	if f != nil && rm.match.RestrictsClients() {
		if !sc.ClientIP.IsValid() {
			fmt.Fprintf(stderr, "note: route %s admits clients by address (allow_cidrs, deny_cidrs); give --client-ip to check it\n", rm.Route.ID)
		} else if err := rm.match.CheckClient(sc.ClientIP); err != nil {
			return nil, fmt.Errorf("the gateway refuses client %s on route %s with 403 before any policy runs (allow_cidrs, deny_cidrs)", sc.ClientIP, rm.Route.ID)
		}
	}

	allow := policy.DefaultHeaders
	if f != nil && f.Policy != nil {
		allow = f.Policy.Headers
	}
	for name := range hreq.Header {
		if !slices.ContainsFunc(allow, func(a string) bool { return strings.EqualFold(a, name) }) {
			fmt.Fprintf(stderr, "note: header %s is not in the policy's header allow-list (policy.headers): the policy does not see it\n", name)
		}
	}
	in := policy.NewInputBuilder(allow, nil).Build(sc, hreq)

	er := &evalRequest{input: in, entrypoint: rm.Route.Policy}
	if f != nil && f.Policy != nil {
		if er.entrypoint == "" {
			er.entrypoint = f.Policy.Entrypoint
		}
		er.evalTimeout = f.Policy.EvalTimeout
	}
	return er, nil
}

// allowableHeader refuses the headers that carry credentials, which the
// policy configuration never lets a policy see.
func allowableHeader(name string) error {
	c := policy.Config{Headers: []string{name}}
	c.Defaults()
	err := c.Validate()
	var fe *fielderr.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Msg)
	}
	return err
}

// resolvedRoute is the route of the request and its canonical path.
type resolvedRoute struct {
	Route                     *scope.Route
	Params                    map[string]string
	Method, Path, EscapedPath string
	// match is the configuration's match; nil for a route given by hand.
	match *proxy.RouteMatch
}

// resolveRoute routes hreq as a gateway with f would, or takes the route
// from --route, --param and --tag without a configuration. Either way
// the path is validated and canonicalised as the gateway does.
func (r *requestFlags) resolveRoute(hreq *http.Request, f *config.File, stderr io.Writer) (*resolvedRoute, error) {
	refused := func(err error) error {
		var herr *proxy.HTTPError
		switch {
		case errors.Is(err, proxy.ErrGatewayEndpoint):
			return fmt.Errorf("%s %s: %w", hreq.Method, hreq.RequestURI, err)
		case errors.As(err, &herr) && herr.Status == http.StatusNotFound:
			return fmt.Errorf("%s %s on host %s: no route matches it: the gateway answers 404 and no policy runs", hreq.Method, hreq.RequestURI, hreq.Host)
		case errors.As(err, &herr) && herr.Status == http.StatusMethodNotAllowed && herr.Header.Get("Allow") != "":
			return fmt.Errorf("%s %s: the route does not allow %s (it allows %s): the gateway answers 405 and no policy runs", hreq.Method, hreq.RequestURI, hreq.Method, herr.Header.Get("Allow"))
		case errors.As(err, &herr):
			return fmt.Errorf("%s %s: the gateway answers %d before any policy runs: %s", hreq.Method, hreq.RequestURI, herr.Status, herr.PublicText(i18n.English))
		}
		return fmt.Errorf("%s %s: the gateway answers 400 before any policy runs: %w", hreq.Method, hreq.RequestURI, err)
	}
	if f != nil {
		m, err := proxy.NewRouteMatcher(f.Config)
		if err != nil {
			return nil, err
		}
		rm, err := m.Match(hreq)
		if err != nil {
			return nil, refused(err)
		}
		return &resolvedRoute{Route: rm.Route, Params: rm.Params, Method: rm.Method, Path: rm.Path, EscapedPath: rm.EscapedPath, match: rm}, nil
	}
	t, err := proxy.ParseRequestTarget(hreq.RequestURI)
	if err != nil {
		return nil, refused(err)
	}
	if r.route == "" {
		return nil, usageError(stderr, "eval", "which route? give -c CONFIG to route the request as the gateway does, or --route ID [--param K=V]... [--tag T]...")
	}
	rt := &resolvedRoute{Route: &scope.Route{ID: r.route, Tags: r.tags}, Method: hreq.Method, Path: t.Path, EscapedPath: t.EscapedPath}
	for _, p := range r.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageError(stderr, "eval", "--param %q: want NAME=VALUE", p)
		}
		if rt.Params == nil {
			rt.Params = map[string]string{}
		}
		rt.Params[k] = v
	}
	return rt, nil
}

// caller builds the subject the flags describe, as identification would
// establish it for a request at now.
func (r *requestFlags) caller(now time.Time, stderr io.Writer) (*scope.Subject, error) {
	if r.subject != "" {
		if set := flagNames(r.fs, "as", "api-key", "role", "group", "amr", "scope", "email", "acr", "tier", "auth-age"); len(set) > 0 {
			return nil, usageError(stderr, "eval", "--subject is the whole subject; it does not combine with %s", strings.Join(set, ", "))
		}
		return readSubject(r.subject)
	}
	who := r.as
	if r.apiKey != "" {
		if who != "" {
			return nil, usageError(stderr, "eval", "give --as or --api-key, not both")
		}
		who = "key:" + r.apiKey
	}
	if who == "" {
		return nil, usageError(stderr, "eval", "who is calling? --as USER, --as key:NAME, --as service:ID, --as anonymous, or --subject FILE")
	}
	kind, id := scope.KindUser, who
	if k, rest, ok := strings.Cut(who, ":"); ok {
		switch k {
		case "key":
			kind, id = scope.KindAPIKey, rest
		case "service":
			kind, id = scope.KindService, rest
		}
	} else if who == scope.KindAnonymous {
		kind, id = scope.KindAnonymous, ""
	}
	if kind != scope.KindAnonymous && id == "" {
		return nil, usageError(stderr, "eval", "--as %q names no one", who)
	}
	// Flags that describe another kind of caller are mistakes, not
	// silently ignored.
	allowed := map[string][]string{
		scope.KindUser:    {"role", "group", "amr", "email", "acr", "auth-age"},
		scope.KindService: {"role"},
		scope.KindAPIKey:  {"scope", "tier"},
	}[kind]
	for _, name := range []string{"role", "group", "amr", "email", "acr", "auth-age", "scope", "tier"} {
		if len(flagNames(r.fs, name)) > 0 && !slices.Contains(allowed, name) {
			return nil, usageError(stderr, "eval", "--%s does not describe a caller of kind %s (--as %s)", name, kind, who)
		}
	}
	sub := &scope.Subject{Kind: kind, ID: id}
	switch kind {
	case scope.KindUser:
		sub.Email, sub.Roles, sub.Groups, sub.ACR = r.email, r.roles, r.groups, r.acr
		sub.AMR = r.amr
		if len(sub.AMR) == 0 {
			sub.AMR = []string{"pwd"}
		}
		if r.authAge < 0 {
			return nil, usageError(stderr, "eval", "--auth-age %s is negative", r.authAge)
		}
		sub.AuthTime = now.Add(-r.authAge)
	case scope.KindService:
		sub.Roles = r.roles
	case scope.KindAPIKey:
		sub.APIKey = &scope.APIKey{ID: id, Name: id, Scopes: r.scopes, Tier: r.tier}
	}
	return sub, nil
}

// readSubject reads input.subject as JSON; unknown fields are refused.
func readSubject(path string) (*scope.Subject, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s policy.SubjectInput
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("--subject %s: %w (the subject's fields are in docs/policy.md)", path, err)
	}
	switch s.Kind {
	case scope.KindUser, scope.KindAPIKey, scope.KindService, scope.KindAnonymous:
	default:
		return nil, fmt.Errorf("--subject %s: kind %q is not user, api_key, service or anonymous", path, s.Kind)
	}
	sub := &scope.Subject{Kind: s.Kind, ID: s.ID, Email: s.Email, Roles: s.Roles, Groups: s.Groups,
		ACR: s.ACR, AMR: s.AMR, Claims: s.Claims}
	if s.AuthTime != 0 {
		sub.AuthTime = time.Unix(s.AuthTime, 0).UTC()
	}
	if k := s.APIKey; k != nil {
		sub.APIKey = &scope.APIKey{ID: k.ID, Name: k.Name, Owner: k.Owner, Scopes: k.Scopes, Tier: k.Tier}
	}
	return sub, nil
}

// applyRouteAuth applies the route's auth mode and credentials, as the
// gateway's identification stage does: on auth: none every caller is
// anonymous; a credential the route does not accept is not read (the
// caller is anonymous on auth: optional, refused with 401 on auth:
// required).
func applyRouteAuth(f *config.File, rm *resolvedRoute, sub *scope.Subject, stderr io.Writer) (*scope.Subject, error) {
	anonymous := &scope.Subject{Kind: scope.KindAnonymous}
	m := rm.match
	if m.Auth == proxy.AuthNone {
		if sub.Kind != scope.KindAnonymous {
			fmt.Fprintf(stderr, "note: route %s has auth: none: the gateway identifies no caller there, so the policy sees an anonymous subject\n", rm.Route.ID)
		}
		return anonymous, nil
	}
	if sub.Kind == scope.KindAnonymous {
		if m.Auth == proxy.AuthRequired {
			return nil, fmt.Errorf("route %s requires an identified caller (auth: required): the gateway answers 401 to an anonymous one and no policy runs", rm.Route.ID)
		}
		return sub, nil
	}
	accepted := m.Credentials
	if len(accepted) == 0 {
		if f.OIDC != nil {
			accepted = append(accepted, proxy.CredSession)
		}
		if f.APIKeys != nil {
			accepted = append(accepted, proxy.CredAPIKey)
		}
		if f.Bearer != nil {
			accepted = append(accepted, proxy.CredBearer)
		}
	}
	cred := map[string]string{scope.KindUser: proxy.CredSession, scope.KindAPIKey: proxy.CredAPIKey, scope.KindService: proxy.CredBearer}[sub.Kind]
	if slices.Contains(accepted, cred) {
		return sub, nil
	}
	if m.Auth == proxy.AuthRequired {
		return nil, fmt.Errorf("route %s does not accept %s credentials (it accepts %v): the gateway answers 401 and no policy runs", rm.Route.ID, cred, accepted)
	}
	fmt.Fprintf(stderr, "note: route %s does not accept %s credentials (it accepts %v): the gateway does not read them, so the policy sees an anonymous subject\n", rm.Route.ID, cred, accepted)
	return anonymous, nil
}
