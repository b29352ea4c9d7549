package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/auth/bearer"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// Credential kinds a route accepts (RouteConfig.Credentials).
const (
	CredSession = "session"
	CredAPIKey  = "api_key"
	CredBearer  = "bearer"
)

// APIKeyVerifier checks a presented API key (auth/apikey's Manager).
type APIKeyVerifier interface {
	Verify(ctx context.Context, presented string) (*apikey.Record, error)
}

// BearerVerifier checks a bearer access token (auth/bearer's Verifier).
type BearerVerifier interface {
	Verify(ctx context.Context, raw string) (*scope.Subject, error)
}

// UpstreamCredentialConfig replaces the client's credential with the CRM's
// own on forwarded requests (credential translation).
type UpstreamCredentialConfig struct {
	Header string     `yaml:"header" jsonschema_description:"Header that carries the CRM's service credential, e.g. Authorization or X-CRM-Api-Key. Client copies are always removed."`
	Value  secret.Ref `yaml:"value" jsonschema_description:"Secret reference (env:NAME or file:/path) to the header's whole value, e.g. a file holding 'Bearer <token>'."`
}

// routeCreds is what a route accepts, compiled once.
type routeCreds struct {
	session, apiKey, bearer bool
	keySources              []apikey.Source
	// translate is the CRM's credential header (canonical) and value.
	translateHeader, translateValue string
}

// compileCreds works out each route's credential settings against what
// the deployment has configured.
func compileCreds(cfg Config, d Deps) ([]routeCreds, error) {
	out := make([]routeCreds, len(cfg.Routes))
	for i, r := range cfg.Routes {
		kinds := r.Credentials
		if len(kinds) == 0 {
			if d.Auth != nil {
				kinds = append(kinds, CredSession)
			}
			if d.APIKeys != nil {
				kinds = append(kinds, CredAPIKey)
			}
			if d.Bearer != nil {
				kinds = append(kinds, CredBearer)
			}
		}
		rc := &out[i]
		for _, k := range kinds {
			switch k {
			case CredSession:
				if d.Auth == nil {
					return nil, fmt.Errorf("route %s accepts browser sessions but no oidc section is configured", r.ID)
				}
				rc.session = true
			case CredAPIKey:
				if d.APIKeys == nil {
					return nil, fmt.Errorf("route %s accepts API keys but no api_keys section is configured", r.ID)
				}
				rc.apiKey = true
			case CredBearer:
				if d.Bearer == nil {
					return nil, fmt.Errorf("route %s accepts bearer tokens but no bearer section is configured", r.ID)
				}
				rc.bearer = true
			}
		}
		rc.keySources = d.APIKeySources
		if len(r.APIKeyFrom) > 0 {
			rc.keySources = nil
			for _, s := range r.APIKeyFrom {
				src, err := apikey.ParseSource(s)
				if err != nil {
					return nil, fmt.Errorf("route %s: api_key_from: %w", r.ID, err)
				}
				rc.keySources = append(rc.keySources, src)
			}
		}
		if r.Auth == AuthRequired && !rc.session && !rc.apiKey && !rc.bearer {
			// Not a silent 401 on every request: a route that needs a
			// caller without a way to identify one is a mistake.
			return nil, fmt.Errorf("route %s requires an identified caller (auth: required) but accepts no configured credential; configure oidc, api_keys or bearer, or set auth: none or optional on the route", r.ID)
		}
		if u := r.UpstreamCredential; u.Header != "" {
			rc.translateHeader = http.CanonicalHeaderKey(u.Header)
			rc.translateValue = string(u.Value.Value())
		}
	}
	return out, nil
}

// errNoExplicit means the request carries no API key or bearer token the
// route accepts.
var errNoExplicit = errors.New("no explicit credential")

// explicitCredential identifies a caller by an API key or a bearer token.
// An explicit credential takes precedence over a session cookie: it is
// what a client chose to send, where a cookie is sent by the browser on
// its own.
func (g *Gateway) explicitCredential(r *http.Request, s *scope.Scope, rc *routeCreds) (*scope.Subject, *HTTPError) {
	var key string
	var keyErr error = apikey.ErrNoCredential
	if rc.apiKey {
		key, _, keyErr = apikey.Extract(r, rc.keySources)
	}
	var tok string
	var tokErr error = bearer.ErrNoToken
	if rc.bearer {
		tok, tokErr = bearer.Extract(r)
	}
	keyFound, tokFound := !errors.Is(keyErr, apikey.ErrNoCredential), !errors.Is(tokErr, bearer.ErrNoToken)
	switch {
	case !keyFound && !tokFound:
		return nil, nil
	case keyFound && tokFound:
		return nil, g.refuseCredential(r, s, CredAPIKey, errors.New("both an API key and a bearer token"))
	}
	if blocked := g.failures.blocked(s, g.now()); blocked > 0 {
		return nil, tooManyFailures(blocked)
	}
	if keyFound {
		if keyErr != nil {
			return nil, g.refuseCredential(r, s, CredAPIKey, keyErr)
		}
		rec, err := g.apiKeys.Verify(r.Context(), key)
		switch {
		case errors.Is(err, apikey.ErrUnavailable):
			return nil, unavailable(err, "proxy.error.api_key_unavailable")
		case err != nil:
			return nil, g.refuseCredential(r, s, CredAPIKey, err)
		}
		return rec.Subject(), nil
	}
	if tokErr != nil {
		return nil, g.refuseCredential(r, s, CredBearer, tokErr)
	}
	sub, err := g.bearer.Verify(r.Context(), tok)
	switch {
	case errors.Is(err, bearer.ErrUnavailable):
		return nil, unavailable(err, "proxy.error.token_unavailable")
	case err != nil:
		return nil, g.refuseCredential(r, s, CredBearer, err)
	}
	return sub, nil
}

func unavailable(err error, public string) *HTTPError {
	return &HTTPError{Status: http.StatusServiceUnavailable, Outcome: "unavailable", Err: err, Public: public}
}

// refuseCredential answers a credential that is malformed, unknown,
// expired, revoked or ambiguous: 401 with nothing more than RFC 6750
// allows. The reason is logged; the failure counts against the client's
// address.
func (g *Gateway) refuseCredential(r *http.Request, s *scope.Scope, kind string, err error) *HTTPError {
	g.log.LogAttrs(r.Context(), slog.LevelWarn, "credential refused",
		slog.String("request_id", s.ID), slog.String("kind", kind), slog.String("client_ip", s.ClientIP.String()), slog.Any("err", err))
	g.metrics.rejected.WithLabelValues("invalid_credential").Inc()
	g.failures.record(r.Context(), s, g.now())
	challenge := `Bearer realm="crmgate", error="invalid_token"`
	if kind == CredAPIKey {
		challenge = `ApiKey realm="crmgate"`
	}
	return &HTTPError{Status: http.StatusUnauthorized, Outcome: "unauthenticated", Reason: "invalid_credential", Err: err,
		Public: "proxy.error.credential_invalid", Header: http.Header{"Www-Authenticate": {challenge}}}
}

// challenges lists what a route accepts, for a 401 without credentials.
func challenges(rc *routeCreds) []string {
	var out []string
	if rc.bearer {
		out = append(out, `Bearer realm="crmgate"`)
	}
	if rc.apiKey {
		out = append(out, `ApiKey realm="crmgate"`)
	}
	if len(out) == 0 {
		out = append(out, `Bearer realm="crmgate"`)
	}
	return out
}

// setCredentials removes the client's credentials the gateway consumed
// and adds the CRM's own (credential translation).
func (g *Gateway) setCredentials(h http.Header, rc *routeCreds) {
	for _, src := range rc.keySources {
		src.Strip(h)
	}
	if rc.bearer {
		delete(h, "Authorization")
	}
	if rc.translateHeader != "" {
		for k := range h {
			if normName(k) == normName(rc.translateHeader) {
				delete(h, k)
			}
		}
		h[rc.translateHeader] = []string{rc.translateValue}
	}
}

// failureLimiter counts refused credentials per client address in the
// failed_credentials tier and blocks an address that spent it until the
// tier refills: guessing keys or replaying stolen tokens is slowed down
// across replicas (the counts are shared with the Redis backend).
type failureLimiter struct {
	limiter ratelimit.Limiter // nil: not limited
	tier    string
	log     *slog.Logger

	mu      sync.Mutex
	until   map[string]time.Time
	lastGC  time.Time
	maxKeys int
}

func (f *failureLimiter) key(s *scope.Scope) string { return ratelimit.KeyForIP(s.ClientIP) }

// blocked returns how long s's address is still blocked, 0 when it is not.
func (f *failureLimiter) blocked(s *scope.Scope, now time.Time) time.Duration {
	if f == nil || f.limiter == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.until[f.key(s)]; ok {
		if d := t.Sub(now); d > 0 {
			return d
		}
		delete(f.until, f.key(s))
	}
	return 0
}

// record counts one refused credential of s's address.
func (f *failureLimiter) record(ctx context.Context, s *scope.Scope, now time.Time) {
	if f == nil || f.limiter == nil {
		return
	}
	res, err := f.limiter.Allow(ctx, ratelimit.KeyFor("failed", f.key(s)), f.tier)
	if err != nil || res.Allowed {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.until) >= f.maxKeys || now.Sub(f.lastGC) > time.Minute {
		for k, t := range f.until {
			if !t.After(now) {
				delete(f.until, k)
			}
		}
		f.lastGC = now
		if len(f.until) >= f.maxKeys {
			return // the shared counter still refuses them
		}
	}
	f.until[f.key(s)] = now.Add(max(res.RetryAfter, time.Second))
	f.log.LogAttrs(ctx, slog.LevelWarn, "client blocked after repeated refused credentials",
		slog.String("client_ip", s.ClientIP.String()), slog.Duration("for", res.RetryAfter))
}

func tooManyFailures(d time.Duration) *HTTPError {
	secs := int((d + time.Second - 1) / time.Second)
	return &HTTPError{Status: http.StatusTooManyRequests, Outcome: "rate_limited", Reason: "failed_credentials",
		Public: "proxy.error.too_many_failures",
		Header: http.Header{"Retry-After": {fmt.Sprint(secs)}}}
}

// tierFor picks the rate-limit tier of a request: the route's, the policy
// decision's, the API key's, or the default of the subject's kind; ""
// means not limited.
func (g *Gateway) tierFor(rt *route, s *scope.Scope, policyTier string) string {
	if t := rt.cfg.RateLimit.Tier; t != "" {
		return t
	}
	if _, ok := g.rl.Tiers[policyTier]; ok {
		return policyTier
	}
	sub := s.Subject
	if sub == nil {
		return ""
	}
	if sub.APIKey != nil && sub.APIKey.Tier != "" {
		if _, ok := g.rl.Tiers[sub.APIKey.Tier]; ok {
			return sub.APIKey.Tier
		}
	}
	return g.rl.Default[sub.Kind]
}

// rateKey is who a request's allowance belongs to: the identity, or the
// client address for anonymous callers.
func rateKey(rt *route, s *scope.Scope) string {
	var k string
	if sub := s.Subject; sub != nil && sub.Kind != scope.KindAnonymous && sub.ID != "" {
		kind := sub.Kind
		k = ratelimit.KeyFor(kind, sub.ID)
	} else {
		k = ratelimit.KeyForIP(s.ClientIP)
	}
	if rt.cfg.RateLimit.PerRoute {
		k = ratelimit.WithRoute(rt.cfg.ID, k)
	}
	return k
}

// limit applies the rate limit (stage 7) and adds the RateLimit headers.
func (g *Gateway) limit(w http.ResponseWriter, r *http.Request, s *scope.Scope, rt *route, f *forward) *HTTPError {
	if g.limiter == nil {
		return nil
	}
	policyTier := ""
	if f != nil {
		policyTier = f.policyTier
	}
	tier := g.tierFor(rt, s, policyTier)
	if tier == "" {
		return nil
	}
	res, err := g.limiter.Allow(r.Context(), rateKey(rt, s), tier)
	if err != nil {
		return unavailable(err, "proxy.error.limiter_unavailable")
	}
	ratelimit.SetHeaders(w.Header(), tier, g.rl.Tiers[tier], res)
	if !res.Allowed {
		g.metrics.rejected.WithLabelValues("rate_limited").Inc()
		return &HTTPError{Status: http.StatusTooManyRequests, Outcome: "rate_limited", Reason: "rate_limited",
			Public: "proxy.error.rate_limited",
			Header: http.Header{"Retry-After": w.Header().Values("Retry-After")}}
	}
	return nil
}
