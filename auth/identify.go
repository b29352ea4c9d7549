package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session"
)

var (
	// ErrRefreshRejected means the provider refused to renew the session's
	// tokens (the grant was revoked or expired, or it answered with tokens
	// that do not verify): the session is over. Identify's error wraps it
	// together with session.ErrNoSession.
	ErrRefreshRejected = errors.New("auth: token refresh rejected")
	// errRefreshUnavailable means the provider could not be asked; the
	// session goes on with its current tokens.
	errRefreshUnavailable = errors.New("auth: provider unavailable for token refresh")
)

// refreshPause is how long refreshes are held off after the provider
// failed to answer one.
const refreshPause = 15 * time.Second

// Identify returns the user of the request's session and the session
// itself. It renews the session's tokens when they are due (see
// session.Manager.Refresh); when the provider refuses, the session is
// revoked and the error wraps ErrRefreshRejected and session.ErrNoSession,
// and when the provider is unreachable the session goes on with its
// current tokens. It also extends the idle deadline, at most once per
// tenth of the idle timeout, so that an active user stays logged in
// without a store write on every request.
//
// It fails with the errors of session.Manager.Load (ErrNoSession,
// ErrExpired, ErrInvalidCookie, ErrAmbiguousCookie, ErrUnavailable):
// treat every error as unauthenticated, and ErrUnavailable as 503.
func (rp *RP) Identify(r *http.Request) (*scope.Subject, *session.Record, error) {
	if rp.sessions == nil {
		return nil, nil, errors.New("auth: no session manager")
	}
	rec, err := rp.sessions.Load(r)
	if err != nil {
		return nil, nil, err
	}
	if rp.sessions.NeedsRefresh(rec) && rp.refreshAllowed() {
		next, err := rp.sessions.Refresh(r.Context(), rec, rp.refreshFunc(rec.UserID, rec.AuthTime))
		switch {
		case err == nil:
			rec = next
		case errors.Is(err, ErrRefreshRejected):
			if derr := rp.sessions.RevokeSession(context.WithoutCancel(r.Context()), rec.Hash()); derr != nil {
				rp.log.LogAttrs(r.Context(), slog.LevelError, "auth: revoking session after refused refresh", slog.String("id_hash", rec.Hash()), slog.Any("err", derr))
			}
			rp.log.LogAttrs(r.Context(), slog.LevelInfo, "auth: token refresh refused; session ended", slog.String("id_hash", rec.Hash()), slog.Any("err", err))
			rp.emit(r, Event{Type: EventRefreshFailure, Subject: rec.UserID, SessionHash: rec.Hash(), Reason: ReasonRefreshRejected})
			return nil, nil, fmt.Errorf("%w: %w", session.ErrNoSession, err)
		case errors.Is(err, errRefreshUnavailable):
			rp.pauseRefresh()
			rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: token refresh failed; session kept", slog.String("id_hash", rec.Hash()), slog.Any("err", err))
			rp.emit(r, Event{Type: EventRefreshFailure, Subject: rec.UserID, SessionHash: rec.Hash(), Reason: ReasonRefreshUnavailable})
		default:
			// The session itself is gone, expired, or the store failed.
			return nil, nil, err
		}
	}
	rp.touch(r.Context(), rec)
	return rec.Subject(), rec, nil
}

// touch saves rec to extend its idle deadline once a tenth of the idle
// window has passed since the last save.
func (rp *RP) touch(ctx context.Context, rec *session.Record) {
	window := min(rec.IdleExpires.Sub(rec.LastSeen), rp.sessions.IdleTimeout())
	if rp.now().Sub(rec.LastSeen) < window/10 {
		return
	}
	err := rp.sessions.Save(ctx, rec)
	if err != nil && !errors.Is(err, session.ErrConflict) {
		// A conflict means another request saved it meanwhile, which
		// extended it too.
		rp.log.LogAttrs(ctx, slog.LevelDebug, "auth: extending session", slog.String("id_hash", rec.Hash()), slog.Any("err", err))
	}
}

func (rp *RP) refreshAllowed() bool {
	return rp.now().UnixNano() >= rp.refreshPausedUntil.Load()
}

func (rp *RP) pauseRefresh() {
	rp.refreshPausedUntil.Store(rp.now().Add(refreshPause).UnixNano())
}

// refreshFunc renews tokens with the refresh token grant (RFC 6749 §6) and
// verifies the new ID token as for a refresh (OIDC Core §12.2: same
// issuer, audience, subject and auth_time). Such a token carries no nonce,
// so what sets it apart from an access token the provider signed as a
// plain JWT for the same audience is only its typ or a scope claim, when
// the provider sends them; the refreshed ID token is kept for
// id_token_hint and never changes who the session's user is. session.Manager.Refresh calls it at most
// once per session across replicas.
func (rp *RP) refreshFunc(subject string, authTime time.Time) session.RefreshFunc {
	return func(ctx context.Context, cur session.Tokens) (session.Tokens, error) {
		p := rp.prov.Load()
		if p == nil {
			return session.Tokens{}, fmt.Errorf("%w: not discovered", errRefreshUnavailable)
		}
		if cur.RefreshToken == "" {
			return session.Tokens{}, fmt.Errorf("%w: no refresh token", ErrRefreshRejected)
		}
		ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
		defer cancel()
		tok, err := p.oauth.TokenSource(rp.clientContext(ctx), &oauth2.Token{RefreshToken: cur.RefreshToken}).Token()
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil && (re.Response.StatusCode == http.StatusBadRequest || re.Response.StatusCode == http.StatusUnauthorized) {
				// An OAuth error response (RFC 6749 §5.2: invalid_grant and
				// friends): the grant is gone, whatever the exact code.
				// Anything else (5xx, 429, a network error) is an outage.
				return session.Tokens{}, fmt.Errorf("%w: %w", ErrRefreshRejected, err)
			}
			return session.Tokens{}, fmt.Errorf("%w: %w", errRefreshUnavailable, err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		var idt *oidc.IDToken
		if rawID != "" {
			if idt, _, _, err = rp.verifyIDToken(ctx, p, rawID, idCheck{subject: subject, authTime: authTime}); err != nil {
				return session.Tokens{}, fmt.Errorf("%w: %w", ErrRefreshRejected, err)
			}
		}
		if err := checkAccessToken(tok.AccessToken, rawID, idt); err != nil {
			return session.Tokens{}, fmt.Errorf("%w: %w", ErrRefreshRejected, err)
		}
		return rp.tokens(tok, rawID, cur), nil
	}
}
