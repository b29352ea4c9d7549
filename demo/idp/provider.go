package idp

import (
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	loggedOutPath = "/logged-out"
	// keyRetentionSlack keeps a retired key published a little past the
	// last expiry it signed, for relying parties whose clocks run behind.
	keyRetentionSlack = time.Minute
)

// Provider is the development OpenID Provider. Build it with [New] and serve
// [Provider.Handler] over TLS at the issuer's origin.
type Provider struct {
	log         *slog.Logger
	now         func() time.Time
	issuer      string
	keys        *keyring
	store       *storage
	sessions    *sessionStore
	guard       *guard
	op          *op.Provider
	csrfKey     []byte
	backChannel *http.Client
	handler     http.Handler
	warnOnce    sync.Once
}

// New validates cfg and builds a provider with a fresh signing key. It
// starts nothing: serve [Provider.Handler]. A nil log discards; a nil now
// means time.Now.
func New(cfg Config, log *slog.Logger, now func() time.Time) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.withDefaults()
	retention := max(cfg.IDTokenTTL, cfg.AccessTokenTTL, logoutTokenTTL) + keyRetentionSlack
	keys, err := newKeyring(now, cfg.KeyRotation, retention)
	if err != nil {
		return nil, err
	}
	p := &Provider{
		log:      log,
		now:      now,
		issuer:   strings.TrimSuffix(cfg.Issuer, "/"),
		keys:     keys,
		store:    newStorage(log, now, cfg, keys),
		sessions: newSessionStore(now, cfg.SessionTTL),
		guard:    newGuard(now),
		csrfKey:  make([]byte, 32),
		backChannel: &http.Client{
			Transport: cfg.BackChannelTransport,
			// Back-Channel Logout 1.0 gives the URI; a redirect is not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	_, _ = rand.Read(p.csrfKey)
	opConfig := &op.Config{
		DefaultLogoutRedirectURI:          p.issuer + loggedOutPath,
		CodeMethodS256:                    true,
		GrantTypeRefreshToken:             true,
		SupportedScopes:                   supportedScopes,
		SupportedClaims:                   supportedClaims,
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}
	// The key encrypts nothing this provider hands out (access tokens are
	// JWTs), but the library derives authorization codes from it.
	_, _ = rand.Read(opConfig.CryptoKey[:])
	p.op, err = op.NewProvider(opConfig, providerStorage{storage: p.store, p: p}, op.StaticIssuer(p.issuer),
		op.WithCORSOptions(corsOptions(cfg.Clients)))
	if err != nil {
		return nil, err
	}
	p.handler = p.routes()
	return p, nil
}

// corsOptions lets the clients' own origins call the token, userinfo and
// other endpoints from a browser, without credentials; the library's default
// reflects any origin with credentials.
func corsOptions(clients []Client) *cors.Options {
	var origins []string
	for _, c := range clients {
		for _, u := range c.RedirectURIs {
			origins = append(origins, originOf(u))
		}
	}
	return &cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Accept"},
	}
}

// Issuer returns the issuer identifier, without a trailing slash.
func (p *Provider) Issuer() string { return p.issuer }

// Handler returns the provider's HTTP handler: the library's endpoints, the
// login pages and the augmented discovery document. The first call logs that
// this provider is not for production.
func (p *Provider) Handler() http.Handler {
	p.warnOnce.Do(func() {
		p.log.Warn("development OpenID Provider, NOT for production: in-memory users, sessions and keys", "issuer", p.issuer)
	})
	return p.handler
}

// Rotate replaces the signing key now. The retired public key stays in the
// JWKS until every token it signed has expired.
func (p *Provider) Rotate() error {
	if err := p.keys.rotate(); err != nil {
		return err
	}
	p.log.Info("signing key rotated")
	return nil
}

func (p *Provider) routes() http.Handler {
	authorize := p.op.AuthorizationEndpoint().Relative()
	mux := http.NewServeMux()
	mux.HandleFunc(oidc.DiscoveryEndpoint, p.discovery)
	mux.Handle("GET "+loginPath, p.handle(p.loginPage))
	mux.Handle("POST "+loginPath, p.handle(p.loginSubmit))
	mux.Handle("GET "+otpPath, p.handle(p.otpPage))
	mux.Handle("POST "+otpPath, p.handle(p.otpSubmit))
	mux.HandleFunc("GET "+loggedOutPath, p.loggedOut)
	mux.Handle(authorize+"/callback", p.guardCallback(p.op))
	mux.Handle(p.op.EndSessionEndpoint().Relative(), p.withLogoutContext(p.op))
	mux.Handle("/", p.op)
	var h http.Handler = mux
	h = op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler(h)
	h = p.issParameter(h, authorize, authorize+"/callback", loginPath, otpPath)
	return securityHeaders(h)
}

// discovery serves the library's discovery document, narrowed to what this
// provider really offers and with the metadata the library has no field for.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(op.CreateDiscoveryConfig(r.Context(), p.op, p.op.Storage()))
	var doc map[string]any
	if err == nil {
		err = json.Unmarshal(b, &doc)
	}
	if err != nil {
		p.log.Error("discovery", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	doc["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
	doc["response_modes_supported"] = []string{string(oidc.ResponseModeQuery)}
	doc["grant_types_supported"] = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	doc["token_endpoint_auth_methods_supported"] = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodNone}
	doc["code_challenge_methods_supported"] = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	doc["acr_values_supported"] = []string{ACRPassword, ACRMFA}
	doc["authorization_response_iss_parameter_supported"] = true // RFC 9207 §3
	delete(doc, "device_authorization_endpoint")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// issParameter adds the iss parameter (RFC 9207) to every authorization
// response, success or error, that paths redirect to a client.
func (p *Provider) issParameter(next http.Handler, paths ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, path := range paths {
			if r.URL.Path == path {
				w = &issWriter{ResponseWriter: w, issuer: p.issuer}
				break
			}
		}
		next.ServeHTTP(w, r)
	})
}

type issWriter struct {
	http.ResponseWriter
	issuer string
	wrote  bool
}

func (w *issWriter) WriteHeader(code int) {
	if !w.wrote && code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); loc != "" {
			w.Header().Set("Location", withIss(loc, w.issuer))
		}
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *issWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *issWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withIss adds iss to an authorization response URL: an absolute URL outside
// the issuer carrying code or error in its query.
func withIss(loc, issuer string) string {
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() || strings.HasPrefix(loc, issuer+"/") {
		return loc
	}
	q := u.Query()
	if (!q.Has("code") && !q.Has("error")) || q.Has("iss") {
		return loc
	}
	q.Set("iss", issuer)
	u.RawQuery = q.Encode()
	return u.String()
}

// securityHeaders sets the headers every answer carries; pages add their CSP.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
