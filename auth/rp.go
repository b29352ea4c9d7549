package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/session"
)

const (
	// discoveryTimeout bounds one discovery attempt.
	discoveryTimeout = 10 * time.Second
	// retryMin and retryMax bound the back-off between discovery attempts
	// while the provider is unreachable.
	retryMin = time.Second
	retryMax = time.Minute
	// exchangeTimeout bounds a call to the token or userinfo endpoint.
	exchangeTimeout = 10 * time.Second
	// maxReplayEntries bounds each replay cache (consumed states, seen
	// logout-token ids); past it, the caches refuse rather than forget.
	maxReplayEntries = 100_000
)

// RP is the OpenID Connect relying party for browser users: it logs users
// in with the authorization code flow, keeps their tokens fresh, logs them
// out and honours the provider's back-channel logouts. It is safe for
// concurrent use.
type RP struct {
	cfg      Config
	err      error // a configuration problem; Start reports it
	sessions *session.Manager
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	events   EventSink
	// levels decides whether an authentication satisfies a step-up.
	levels stepup.Config

	redirectURL string
	origin      string      // of ExternalURL, as browsers send it in Origin
	seal        cipher.AEAD // pre-login cookies
	csrfKey     []byte
	handler     http.Handler

	prov     atomic.Pointer[provider]
	started  atomic.Bool
	poke     chan struct{}
	retryMin time.Duration
	retryMax time.Duration

	states *onceCache // consumed login states
	jtis   *onceCache // logout tokens already honoured
	sids   *sidIndex

	// refreshPausedUntil (unix nanoseconds) holds off token refreshes
	// after the provider failed to answer one, so that an outage does not
	// put a doomed round trip on every request.
	refreshPausedUntil atomic.Int64
}

// provider is what discovery yields; it never changes once built.
type provider struct {
	oidc  *oidc.Provider
	oauth *oauth2.Config
	// verifier checks signatures (with the configured algorithms only),
	// issuer and audience of ID and logout tokens.
	verifier   *oidc.IDTokenVerifier
	endSession string
	requireIss bool
}

// Option adjusts an RP at construction.
type Option func(*RP)

// WithStepUpLevels sets the levels of authentication strength step-ups
// are checked against (stepup.Config); the default is its Defaults.
func WithStepUpLevels(c stepup.Config) Option {
	return func(rp *RP) { rp.levels = c }
}

// WithEventSink sends the RP's security events to s instead of the log.
func WithEventSink(s EventSink) Option {
	return func(rp *RP) {
		if s != nil {
			rp.events = s
		}
	}
}

// New returns a relying party for cfg (Defaults applied, secrets
// resolved) that keeps sessions in sessions and reaches the provider with
// client. A nil client is one with a 10 s timeout; a nil log discards; a
// nil now is time.Now. New touches nothing: Start discovers the provider,
// and reports a configuration problem that New found.
func New(cfg Config, sessions *session.Manager, client *http.Client, log *slog.Logger, now func() time.Time, opts ...Option) *RP {
	if client == nil {
		client = &http.Client{Timeout: exchangeTimeout}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	rp := &RP{
		cfg:         cfg,
		sessions:    sessions,
		client:      client,
		log:         log,
		now:         now,
		events:      logSink{log: log},
		redirectURL: strings.TrimSuffix(cfg.ExternalURL, "/") + cfg.RedirectPath,
		poke:        make(chan struct{}, 1),
		retryMin:    retryMin,
		retryMax:    retryMax,
		states:      newOnceCache(maxReplayEntries),
		jtis:        newOnceCache(maxReplayEntries),
		sids:        newSIDIndex(maxReplayEntries),
	}
	rp.levels.Defaults()
	for _, o := range opts {
		o(rp)
	}
	if u, err := url.Parse(cfg.ExternalURL); err == nil {
		// Browsers leave the default port out of Origin.
		rp.origin = u.Scheme + "://" + strings.TrimSuffix(u.Host, ":443")
	}
	rp.err = cfg.Validate()
	if rp.err == nil && sessions == nil {
		rp.err = errors.New("auth: New needs a session manager")
	}
	if rp.err == nil {
		rp.err = rp.deriveKeys()
	}
	rp.handler = rp.routes()
	return rp
}

// deriveKeys expands the configured key (or the client secret) with HKDF
// (RFC 5869) into independent keys for the pre-login cookie and for CSRF
// tokens, so that neither use can be turned against the other.
func (rp *RP) deriveKeys() error {
	ikm := rp.cfg.Key.Value()
	if ikm == nil {
		ikm = rp.cfg.ClientSecret.Value()
	}
	if len(ikm) == 0 {
		return errors.New("auth: no key material: resolve key or client_secret before New")
	}
	sealKey, err := hkdf.Key(sha256.New, ikm, nil, "crmgate auth pre-login cookie v1", 32)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return err
	}
	if rp.seal, err = cipher.NewGCM(block); err != nil {
		return err
	}
	rp.csrfKey, err = hkdf.Key(sha256.New, ikm, nil, "crmgate auth logout csrf v1", 32)
	return err
}

// Start discovers the provider (OpenID Connect Discovery 1.0). When the
// provider cannot be reached it still returns nil: it keeps trying in the
// background with exponential back-off until ctx ends, new logins get a
// 503 page meanwhile, and existing sessions keep working. It returns an
// error only for a configuration problem or a second call.
func (rp *RP) Start(ctx context.Context) error {
	if rp.err != nil {
		return rp.err
	}
	if !rp.started.CompareAndSwap(false, true) {
		return errors.New("auth: Start called twice")
	}
	if err := rp.discover(ctx); err != nil {
		rp.log.LogAttrs(ctx, slog.LevelWarn, "auth: identity provider unreachable; logins answer 503 until it is back",
			slog.String("issuer", rp.cfg.Issuer), slog.Any("err", err))
		go rp.retry(ctx)
	}
	return nil
}

// Ready reports whether the provider has been discovered, for readiness
// probes: until then no one can log in.
func (rp *RP) Ready() bool { return rp.prov.Load() != nil }

// provider returns the discovered provider, or nil (and asks the retry
// loop to try now) while it is unreachable.
func (rp *RP) provider() *provider {
	p := rp.prov.Load()
	if p == nil {
		select {
		case rp.poke <- struct{}{}:
		default:
		}
	}
	return p
}

// retry rediscovers with exponential back-off and jitter; a login attempt
// brings the next try forward, but never closer than retryMin to the last.
func (rp *RP) retry(ctx context.Context) {
	delay := rp.retryMin
	last := time.Now()
	next := last.Add(jitter(delay))
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-rp.poke:
			t.Stop()
			if time.Since(last) < rp.retryMin {
				continue
			}
		}
		last = time.Now()
		err := rp.discover(ctx)
		if err == nil {
			rp.log.LogAttrs(ctx, slog.LevelInfo, "auth: identity provider reachable again", slog.String("issuer", rp.cfg.Issuer))
			return
		}
		rp.log.LogAttrs(ctx, slog.LevelDebug, "auth: identity provider still unreachable", slog.Any("err", err))
		delay = min(delay*2, rp.retryMax)
		next = last.Add(jitter(delay))
	}
}

// jitter spreads replicas' retries over ±20 % of d.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// discoveryMetadata is what the RP reads from the discovery document
// beyond what go-oidc exposes.
type discoveryMetadata struct {
	EndSession string `json:"end_session_endpoint"`
	// RFC 9207 §3.
	IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	AuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
	PKCEMethods  []string `json:"code_challenge_methods_supported"`
}

// discover fetches the discovery document and builds the provider.
func (rp *RP) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	op, err := oidc.NewProvider(rp.clientContext(ctx), rp.cfg.Issuer)
	if err != nil {
		return err
	}
	var meta discoveryMetadata
	if err := op.Claims(&meta); err != nil {
		return fmt.Errorf("auth: discovery document: %w", err)
	}
	ep := op.Endpoint()
	for _, u := range []string{ep.AuthURL, ep.TokenURL} {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" {
			return fmt.Errorf("auth: discovery: endpoint %q is not an https URL", u)
		}
	}
	if len(meta.PKCEMethods) > 0 && !slices.Contains(meta.PKCEMethods, "S256") {
		// PKCE S256 is how a stolen code is made useless (RFC 9700
		// §2.1.1); a provider that ignores it must not be used.
		return fmt.Errorf("auth: provider does not support PKCE S256 (code_challenge_methods_supported %q)", meta.PKCEMethods)
	}
	// Choose one client authentication instead of x/oauth2's auto-detect,
	// which on failure sends the single-use code a second time.
	switch {
	case len(meta.AuthMethods) == 0 || slices.Contains(meta.AuthMethods, "client_secret_basic"):
		ep.AuthStyle = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		ep.AuthStyle = oauth2.AuthStyleInParams
	default:
		return fmt.Errorf("auth: provider supports neither client_secret_basic nor client_secret_post (%q)", meta.AuthMethods)
	}
	algs := slices.Clone(rp.cfg.SigningAlgs)
	p := &provider{
		oidc: op,
		oauth: &oauth2.Config{
			ClientID:     rp.cfg.ClientID,
			ClientSecret: string(rp.cfg.ClientSecret.Value()),
			Endpoint:     ep,
			RedirectURL:  rp.redirectURL,
			Scopes:       slices.Clone(rp.cfg.Scopes),
		},
		// Expiry is checked here with the configured leeway, which
		// go-oidc has no setting for. The algorithms are the configured
		// ones, never the provider's or the token's.
		verifier:   op.Verifier(&oidc.Config{ClientID: rp.cfg.ClientID, SupportedSigningAlgs: algs, SkipExpiryCheck: true, Now: rp.now}),
		endSession: meta.EndSession,
		requireIss: meta.IssParameter,
	}
	rp.prov.Store(p)
	return nil
}

// clientContext carries the injected HTTP client to go-oidc and x/oauth2.
func (rp *RP) clientContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, rp.client)
}

// Handler serves the callback, logout and back-channel logout paths; mount
// it so that those paths reach it. Other paths get 404, other methods 405.
func (rp *RP) Handler() http.Handler { return rp.handler }

// Owns reports whether path is one of the endpoints Handler serves.
func (rp *RP) Owns(path string) bool {
	return path == rp.cfg.RedirectPath || path == rp.cfg.LogoutPath || path == rp.cfg.BackChannelLogoutPath ||
		path == rp.cfg.StepUpPath || path == rp.stepUpDonePath()
}

func (rp *RP) routes() http.Handler {
	if rp.err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			renderError(w, r, http.StatusServiceUnavailable, "auth.error.not_configured")
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+rp.cfg.RedirectPath, rp.callback)
	mux.HandleFunc("GET "+rp.cfg.LogoutPath, rp.logoutPage)
	mux.HandleFunc("POST "+rp.cfg.LogoutPath, rp.logout)
	mux.HandleFunc("POST "+rp.cfg.BackChannelLogoutPath, rp.backChannelLogout)
	mux.HandleFunc("GET "+rp.cfg.StepUpPath, rp.stepUpStart)
	mux.HandleFunc("GET "+rp.stepUpDonePath(), rp.stepUpDone)
	return mux
}
