package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/scope"
)

// ErrInputInvalid is wrapped by every reason an Input cannot be built
// faithfully; a decision on such an input is a deny with
// ReasonInputInvalid.
var ErrInputInvalid = errors.New("policy input cannot be built faithfully")

// Input is what a policy sees as `input`: the request, the matched route,
// the subject and the session, as documented in docs/policy.md. Its JSON
// form is the contract's.
//
// An Input made by InputBuilder.Build carries its OPA value, converted
// once; do not change its fields afterwards (build another one instead).
// An Input written as a literal or decoded from JSON is converted on each
// decision.
type Input struct {
	Request RequestInput `json:"request"`
	Route   RouteInput   `json:"route"`
	Subject SubjectInput `json:"subject"`
	// Session is nil (null) when the caller has no browser session.
	Session *SessionInput `json:"session"`

	// value is the OPA form of the fields above, made once by Value.
	once  sync.Once
	value ast.Value
	// err says why the builder could not represent the request; a
	// decision on the input is then a deny.
	err error
}

// RequestInput describes the HTTP request.
type RequestInput struct {
	// ID is the request id.
	ID string `json:"id"`
	// Method is the effective method, upper case.
	Method string `json:"method"`
	// Path is the canonical decoded path routing matched.
	Path string `json:"path"`
	// Query holds every value of every query parameter, decoded.
	Query map[string][]string `json:"query"`
	// Host is the request's Host, lower-cased, with its port if one was
	// sent.
	Host string `json:"host"`
	// ClientIP is the client's address, empty when unknown.
	ClientIP string `json:"client_ip"`
	// Time is when the gateway received the request, UTC. Policies read
	// it (or time.now_ns(), which evaluates to the same instant) so that
	// a decision depends on the input only.
	Time time.Time `json:"time"`
	// Headers holds the allow-listed request headers by lower-case name;
	// a repeated header's values are joined with ", " (RFC 9110 §5.3).
	Headers map[string]string `json:"headers"`
}

// RouteInput describes the matched route.
type RouteInput struct {
	ID     string            `json:"id"`
	Params map[string]string `json:"params"`
	Tags   []string          `json:"tags"`
}

// SubjectInput describes who is calling. A request that was not identified
// (a route with auth: none) has Kind "anonymous".
type SubjectInput struct {
	// Kind is user, api_key, service or anonymous.
	Kind   string   `json:"kind"`
	ID     string   `json:"id"`
	Email  string   `json:"email"`
	Roles  []string `json:"roles"`
	Groups []string `json:"groups"`
	ACR    string   `json:"acr"`
	AMR    []string `json:"amr"`
	// AuthTime is when the subject last authenticated, in Unix seconds;
	// 0 when unknown or not applicable.
	AuthTime int64 `json:"auth_time"`
	// APIKey is nil (null) unless Kind is api_key.
	APIKey *APIKeyInput `json:"api_key"`
	// Claims are further identity claims.
	Claims map[string]any `json:"claims"`
}

// APIKeyInput describes the API key a caller used, never its secret.
type APIKeyInput struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Owner  string   `json:"owner"`
	Scopes []string `json:"scopes"`
	Tier   string   `json:"tier"`
}

// SessionInput describes the caller's browser session.
type SessionInput struct {
	// AgeS is the session's age in whole seconds at the request's time.
	AgeS int64 `json:"age_s"`
	// IdleS is the time since the session's previous request, in whole
	// seconds.
	IdleS       int64            `json:"idle_s"`
	Fingerprint FingerprintInput `json:"fingerprint"`
}

// FingerprintInput is the comparison of the session's bound client
// fingerprint with the request's.
type FingerprintInput struct {
	// Bound says whether the session has a fingerprint bound at login.
	Bound bool `json:"bound"`
	// Match says whether the request's fingerprint matches it.
	Match bool `json:"match"`
	// Changed names the components that differ (e.g. ja4, ip_prefix).
	Changed []string `json:"changed"`
	// UserAgent is the browser bound at login and the one seen now, so
	// that a policy can tell a browser update from another browser.
	UserAgent UserAgentInput `json:"user_agent"`
}

// UserAgentInput is a browser family and major version ("chrome/130",
// "firefox/128", "other"; "" when unknown) bound at login and seen now.
type UserAgentInput struct {
	Bound   string `json:"bound"`
	Current string `json:"current"`
}

// Err reports why the input could not be built faithfully (wrapping
// ErrInputInvalid), or nil.
func (in *Input) Err() error {
	_, err := in.Value()
	return err
}

// InputBuilder turns requests into Inputs. It is safe for concurrent use.
type InputBuilder struct {
	headers []headerName
	now     func() time.Time
}

type headerName struct {
	lower, canonical string
}

// NewInputBuilder returns a builder that copies the named request headers
// (case-insensitive) into the input. now stamps requests whose scope has
// no start time; nil means time.Now.
func NewInputBuilder(headers []string, now func() time.Time) *InputBuilder {
	b := &InputBuilder{now: now}
	if b.now == nil {
		b.now = time.Now
	}
	for _, h := range headers {
		b.headers = append(b.headers, headerName{strings.ToLower(h), textproto.CanonicalMIMEHeaderKey(h)})
	}
	return b
}

// Build makes the input of the request r whose scope is s. It never fails:
// an input that cannot represent the request faithfully (bytes that are
// not UTF-8 in a header, the query, the path or an identity field; a query
// that does not parse) records why, and any decision on it is a deny with
// ReasonInputInvalid. A nil s or r is such an input too.
func (b *InputBuilder) Build(s *scope.Scope, r *http.Request) *Input {
	in := &Input{}
	if s == nil || r == nil {
		in.err = fmt.Errorf("%w: no request scope", ErrInputInvalid)
		return in
	}
	now := s.Start
	if now.IsZero() {
		now = b.now()
	}
	now = now.UTC()

	req := &in.Request
	req.ID = s.ID
	req.Method = s.Method
	req.Path = s.Path
	req.Host = strings.ToLower(r.Host)
	if s.ClientIP.IsValid() {
		req.ClientIP = s.ClientIP.Unmap().String()
	}
	req.Time = now
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		// url.URL.Query drops what it cannot parse; the upstream would
		// still receive it, so the policy would decide on less than
		// what is forwarded.
		in.err = fmt.Errorf("%w: query: %v", ErrInputInvalid, err)
		return in
	}
	req.Query = query
	req.Headers = make(map[string]string, len(b.headers))
	for _, h := range b.headers {
		vs := r.Header[h.canonical]
		switch len(vs) {
		case 0:
		case 1:
			req.Headers[h.lower] = vs[0]
		default:
			req.Headers[h.lower] = strings.Join(vs, ", ")
		}
	}

	rt := &in.Route
	rt.Params = s.Params
	if s.Route != nil {
		rt.ID = s.Route.ID
		rt.Tags = s.Route.Tags
	}

	sub := &in.Subject
	if s.Subject == nil {
		sub.Kind = scope.KindAnonymous
	} else {
		ss := s.Subject
		sub.Kind, sub.ID, sub.Email = ss.Kind, ss.ID, ss.Email
		sub.Roles, sub.Groups = ss.Roles, ss.Groups
		sub.ACR, sub.AMR = ss.ACR, ss.AMR
		if !ss.AuthTime.IsZero() {
			sub.AuthTime = ss.AuthTime.Unix()
		}
		if k := ss.APIKey; k != nil {
			sub.APIKey = &APIKeyInput{ID: k.ID, Name: k.Name, Owner: k.Owner, Scopes: k.Scopes, Tier: k.Tier}
		}
		sub.Claims = ss.Claims
	}

	if ses := s.Session; ses != nil {
		age := seconds(now.Sub(ses.Created))
		idle := age
		if !ses.LastSeen.IsZero() {
			idle = seconds(now.Sub(ses.LastSeen))
		}
		in.Session = &SessionInput{
			AgeS:  age,
			IdleS: idle,
			Fingerprint: FingerprintInput{
				Bound:   ses.Fingerprint.Bound,
				Match:   ses.Fingerprint.Match,
				Changed: ses.Fingerprint.Changed,
				UserAgent: UserAgentInput{
					Bound:   ses.Fingerprint.BoundUserAgent,
					Current: ses.Fingerprint.UserAgent,
				},
			},
		}
	}

	// The OPA value is made on first use: a reused decision needs none.
	return in
}

// seconds is d in whole seconds, never negative: a clock step must not
// make a session look younger than new.
func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}
