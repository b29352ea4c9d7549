package idp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// grant ties a token to what produced it, so that a replayed code, a
// replayed refresh token or a logout can revoke everything that came of it.
type grant struct {
	authRequestID string
	family        string // refresh token family; empty without offline_access
	clientID      string
	subject       string
	sid           string
}

// accessToken records a JWT access token by its jti, for userinfo,
// introspection and revocation.
type accessToken struct {
	grant
	id      string
	scopes  []string
	expires time.Time
}

// refreshToken is an opaque, single-use refresh token.
type refreshToken struct {
	grant
	token    string
	scopes   []string // as originally granted (RFC 6749 §6)
	amr      []string
	acr      string
	authTime time.Time
	expires  time.Time
}

// usedRefresh remembers a rotated refresh token: presenting it again is a
// sign of theft and revokes its whole family (RFC 9700 §4.14.2).
type usedRefresh struct {
	family  string
	expires time.Time
}

// newAccess stores an access token. Must be called with s.mu held.
func (s *storage) newAccess(g grant, scopes []string) *accessToken {
	t := &accessToken{grant: g, id: randomToken(), scopes: slices.Clone(scopes), expires: s.now().Add(s.accessTTL)}
	s.access[t.id] = t
	return t
}

// CreateAccessToken serves the code flow without offline_access.
func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	a, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.consume(a); err != nil {
		return "", time.Time{}, err
	}
	t := s.newAccess(grant{authRequestID: a.id, clientID: a.clientID, subject: a.subject, sid: a.sid}, a.scopes)
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens serves the code flow with offline_access
// (current is empty) and the refresh grant, which rotates current.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	switch r := req.(type) {
	case *authRequest:
		if err := s.consume(r); err != nil {
			return "", "", time.Time{}, err
		}
		g := grant{authRequestID: r.id, family: randomToken(), clientID: r.clientID, subject: r.subject, sid: r.sid}
		rt := &refreshToken{grant: g, token: randomToken(), scopes: slices.Clone(r.scopes),
			amr: slices.Clone(r.amr), acr: r.acr, authTime: r.authTime, expires: now.Add(s.refreshTTL)}
		s.refresh[rt.token] = rt
		at := s.newAccess(g, r.scopes)
		return at.id, rt.token, at.expires, nil
	case *refreshRequest:
		old, err := s.liveRefresh(current)
		if err != nil {
			return "", "", time.Time{}, err
		}
		delete(s.refresh, current)
		s.usedRefresh[current] = usedRefresh{family: old.family, expires: now.Add(usedTTL)}
		rt := *old
		rt.token, rt.expires = randomToken(), now.Add(s.refreshTTL)
		s.refresh[rt.token] = &rt
		at := s.newAccess(old.grant, r.scopes)
		return at.id, rt.token, at.expires, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// liveRefresh returns the refresh token if it may be used. Must be called
// with s.mu held.
func (s *storage) liveRefresh(token string) (*refreshToken, error) {
	if u, ok := s.usedRefresh[token]; ok {
		n := s.revokeWhere(func(g grant) bool { return g.family == u.family })
		s.log.Warn("rotated refresh token replayed; its family is revoked", "tokens", n)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	rt, ok := s.refresh[token]
	if !ok {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	}
	if !s.now().Before(rt.expires) {
		delete(s.refresh, token)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	return rt, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.liveRefresh(token)
	if err != nil {
		return nil, err
	}
	return &refreshRequest{
		token: rt.token, clientID: rt.clientID, subject: rt.subject, scopes: slices.Clone(rt.scopes),
		amr: slices.Clone(rt.amr), acr: rt.acr, authTime: rt.authTime, sid: rt.sid,
	}, nil
}

// revokeWhere deletes every access and refresh token whose grant matches
// and reports how many. Must be called with s.mu held.
func (s *storage) revokeWhere(match func(grant) bool) int {
	n := 0
	for id, t := range s.access {
		if match(t.grant) {
			delete(s.access, id)
			n++
		}
	}
	for tok, t := range s.refresh {
		if match(t.grant) {
			delete(s.refresh, tok)
			n++
		}
	}
	return n
}

// revokeSession revokes every token issued in the single sign-on session sid,
// offline ones included: the gateway treats the IdP session as the source of
// truth, so a logout must not leave a refresh token behind.
func (s *storage) revokeSession(sid string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revokeWhere(func(g grant) bool { return g.sid == sid })
}

// TerminateSession revokes a user's tokens for one client; the end_session
// endpoint uses TerminateSessionFromRequest instead.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeWhere(func(g grant) bool { return g.subject == userID && g.clientID == clientID })
	return nil
}

// GetRefreshTokenInfo reports the token itself as its id.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refresh[token]
	if !ok || rt.clientID != clientID {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.subject, rt.token, nil
}

// RevokeToken revokes an access token by jti, or a refresh token together
// with everything its grant produced (RFC 7009 §2.1). Unknown tokens are
// already as good as revoked.
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.access[tokenOrID]; ok {
		if at.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.access, tokenOrID)
		return nil
	}
	if rt, ok := s.refresh[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		s.revokeWhere(func(g grant) bool { return g.family == rt.family })
	}
	return nil
}

// liveAccess returns a copy of the access token with id jti, if not revoked
// or expired.
func (s *storage) liveAccess(jti string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[jti]
	if !ok {
		return accessToken{}, fmt.Errorf("access token: %w", errNotFound)
	}
	if !s.now().Before(t.expires) {
		return accessToken{}, errors.New("access token expired")
	}
	return *t, nil
}
