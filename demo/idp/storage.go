package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// authRequestTTL is how long a person has to sign in.
	authRequestTTL = 15 * time.Minute
	// codeTTL is the authorization code lifetime (RFC 6749 §4.1.2 advises
	// at most 10 minutes).
	codeTTL = time.Minute
	// usedTTL is how long spent codes and refresh tokens are remembered, so
	// that a replay revokes what they produced.
	usedTTL = 24 * time.Hour
)

var errNotFound = errors.New("idp: not found")

// storage is the in-memory op.Storage. Users and clients are fixed at New;
// everything else is guarded by mu.
type storage struct {
	log     *slog.Logger
	now     func() time.Time
	users   map[string]User
	clients map[string]*client
	keys    *keyring

	accessTTL, refreshTTL time.Duration

	mu           sync.Mutex
	authRequests map[string]*authRequest
	codes        map[string]string // code → auth request id
	usedCodes    map[string]usedCode
	access       map[string]*accessToken
	refresh      map[string]*refreshToken
	usedRefresh  map[string]usedRefresh
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

type usedCode struct {
	authRequestID string
	expires       time.Time
}

func newStorage(log *slog.Logger, now func() time.Time, cfg Config, keys *keyring) *storage {
	s := &storage{
		log:          log,
		now:          now,
		users:        make(map[string]User, len(cfg.Users)),
		clients:      make(map[string]*client, len(cfg.Clients)),
		keys:         keys,
		accessTTL:    cfg.AccessTokenTTL,
		refreshTTL:   cfg.RefreshTokenTTL,
		authRequests: make(map[string]*authRequest),
		codes:        make(map[string]string),
		usedCodes:    make(map[string]usedCode),
		access:       make(map[string]*accessToken),
		refresh:      make(map[string]*refreshToken),
		usedRefresh:  make(map[string]usedRefresh),
	}
	for _, u := range cfg.Users {
		u.Roles = slices.Clone(u.Roles)
		s.users[u.Username] = u
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = newClient(c, cfg.IDTokenTTL)
	}
	return s
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// CreateAuthRequest stores a request the library has validated, after the
// checks the library leaves to the provider: PKCE with S256 is required of
// every client, and responses go in the query, where RFC 9207's iss goes.
func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	switch {
	case req.CodeChallenge == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge is required (PKCE, S256)")
	case req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery:
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	case !slices.Contains(req.Scopes, oidc.ScopeOpenID):
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	now := s.now()
	a := &authRequest{
		id:           randomToken(),
		created:      now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		codeChallenge: &oidc.CodeChallenge{
			Challenge: req.CodeChallenge,
			Method:    req.CodeChallengeMethod,
		},
		acrValues:   slices.Clone(req.ACRValues),
		maxAge:      req.MaxAge,
		prompt:      slices.Clone(req.Prompt),
		loginHint:   req.LoginHint,
		hintSubject: hintSubject,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune(now)
	s.authRequests[a.id] = a
	return a.clone(), nil
}

// prune drops expired records; the maps stay small at demo scale, so a full
// scan per new authorization request is cheap. Must be called with s.mu held.
func (s *storage) prune(now time.Time) {
	for id, a := range s.authRequests {
		if now.Sub(a.created) > authRequestTTL+codeTTL {
			delete(s.authRequests, id)
			delete(s.codes, a.code)
		}
	}
	for c, u := range s.usedCodes {
		if now.After(u.expires) {
			delete(s.usedCodes, c)
		}
	}
	for id, t := range s.access {
		if now.After(t.expires) {
			delete(s.access, id)
		}
	}
	for tok, t := range s.refresh {
		if now.After(t.expires) {
			delete(s.refresh, tok)
		}
	}
	for tok, u := range s.usedRefresh {
		if now.After(u.expires) {
			delete(s.usedRefresh, tok)
		}
	}
}

// lookup returns the live auth request with id. Must be called with s.mu held.
func (s *storage) lookup(id string) (*authRequest, error) {
	a, ok := s.authRequests[id]
	if !ok || s.now().Sub(a.created) > authRequestTTL {
		return nil, fmt.Errorf("auth request: %w", errNotFound)
	}
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return a.clone(), nil
}

// authRequest is AuthRequestByID for the login handlers.
func (s *storage) authRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return a.clone(), nil
}

// AuthRequestByCode returns the request a code was issued for. A code that
// was already exchanged revokes the tokens it produced (RFC 6749 §4.1.2).
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.usedCodes[code]; ok {
		n := s.revokeWhere(func(g grant) bool { return g.authRequestID == u.authRequestID })
		s.log.Warn("authorization code replayed; tokens revoked", "tokens", n)
		return nil, errors.New("code already used")
	}
	id, ok := s.codes[code]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	a, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if a.consumed || s.now().Sub(a.codeIssued) > codeTTL {
		return nil, errors.New("code expired")
	}
	return a.clone(), nil
}

// SaveAuthCode binds a code to a completed request; one code per request.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(id)
	if err != nil {
		return err
	}
	if !a.done {
		return errors.New("auth request not authenticated")
	}
	if a.code != "" {
		return oidc.ErrInvalidRequest().WithDescription("a code was already issued for this request")
	}
	a.code, a.codeIssued = code, s.now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest runs after tokens were issued for the request; its code
// is remembered as spent.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.authRequests[id]; ok && a.code != "" {
		delete(s.codes, a.code)
		s.usedCodes[a.code] = usedCode{authRequestID: id, expires: s.now().Add(usedTTL)}
	}
	delete(s.authRequests, id)
	return nil
}

// consume marks the request's code as exchanged, so that two concurrent
// exchanges of one code cannot both get tokens. Must be called with s.mu held.
func (s *storage) consume(a *authRequest) error {
	cur, err := s.lookup(a.id)
	if err != nil {
		return oidc.ErrInvalidGrant().WithParent(err)
	}
	if cur.consumed {
		return oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	cur.consumed = true
	return nil
}

// pending records that the user passed the password step of request id.
func (s *storage) setPending(id, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(id)
	if err != nil {
		return err
	}
	a.pendingUser = username
	return nil
}

// complete marks request id as authenticated by sess from browser.
func (s *storage) complete(id string, sess session, browser string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookup(id)
	if err != nil {
		return err
	}
	if a.done {
		return errors.New("auth request already completed")
	}
	a.done = true
	a.pendingUser = ""
	a.subject = sess.username
	a.authTime = sess.authTime
	a.amr = slices.Clone(sess.amr)
	a.acr = sess.acr()
	a.sid = sess.sid
	a.browser = browser
	return nil
}

// GetClientByClientID returns a plain error for an unknown client: the
// library answers a server_error with 500.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || !c.secretMatches(secret) {
		return errors.New("invalid client credentials")
	}
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	kp, err := s.keys.signing()
	if err != nil {
		return nil, err
	}
	return signingKey{kp}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{signingAlg}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	kps := s.keys.published()
	keys := make([]op.Key, len(kps))
	for i, kp := range kps {
		keys[i] = publicKey{kp}
	}
	return keys, nil
}

// GetKeyByIDAndClientID would serve the JWT profile grant and private_key_jwt
// client authentication, which this provider does not offer.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("jwt profile is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("jwt profile is not supported")
}

func (s *storage) Health(context.Context) error { return nil }
