package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"time"

	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session"
)

var errNoPendingLogin = errors.New("auth: no pending login for this state")

// maxStateLen bounds the state parameter looked at; ours are 26 bytes.
const maxStateLen = 256

// oauthErrorRe is an OAuth error code (RFC 6749 §4.1.2.1), the only part
// of a provider's error response that reaches logs and events.
var oauthErrorRe = regexp.MustCompile(`^[a-z_]{1,64}$`)

// callback completes a login (OIDC Core §3.1.2.5 to §3.1.3.7): it binds the
// authorization response to this browser's pending login, exchanges the
// code with the PKCE verifier, verifies the ID token and starts a session
// under a fresh id.
func (rp *RP) callback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		// The mux lets HEAD through with GET; a link checker's HEAD must
		// not consume the login.
		w.Header().Set("Allow", http.MethodGet)
		renderError(w, r, http.StatusMethodNotAllowed, "auth.error.use_get")
		return
	}
	p := rp.provider()
	if p == nil {
		rp.emit(r, Event{Type: EventLoginFailure, Reason: ReasonIdPUnavailable})
		renderUnavailable(w, r)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" || len(state) > maxStateLen || len(q["state"]) != 1 {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonNoState, nil)
		return
	}
	// The state must name a pending login of this browser: a callback
	// that this browser did not start (login CSRF, RFC 9700 §4.7) or a
	// tampered, swapped or expired cookie ends here.
	pl, err := rp.takeLogin(w, r, state)
	switch {
	case errors.Is(err, errLoginExpired):
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonLoginExpired, err)
		return
	case err != nil:
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonUnknownState, err)
		return
	}
	// The cookie is expired in the response, but a copy of it (a replayed
	// request) would still open: each state completes one login.
	if !rp.states.add(stateKey(state), time.Unix(pl.Expires, 0).Add(rp.cfg.ClockSkew), rp.now()) {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonStateReplay, nil)
		return
	}
	// Mix-up defence (RFC 9207 §2.4): the response must come from the
	// provider the request went to. Checked before anything else of the
	// response, error responses included.
	if iss, ok := q["iss"]; ok {
		if len(iss) != 1 || iss[0] != rp.cfg.Issuer {
			rp.loginFailed(w, r, http.StatusBadRequest, ReasonIssuerMismatch, nil)
			return
		}
	} else if p.requireIss {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonIssuerMissing, nil)
		return
	}
	if e := q.Get("error"); e != "" {
		reason := ReasonProviderError
		if oauthErrorRe.MatchString(e) {
			reason += ":" + e
		}
		status := http.StatusBadRequest
		if e == "access_denied" {
			status = http.StatusForbidden
		}
		rp.loginFailed(w, r, status, reason, nil)
		return
	}
	code := q.Get("code")
	if code == "" || len(q["code"]) != 1 {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonNoCode, nil)
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), exchangeTimeout)
	defer cancel()
	tok, err := p.oauth.Exchange(rp.clientContext(ctx), code, oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		// A code from another login fails here: it is bound to that
		// login's PKCE challenge (RFC 7636 §4.6).
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonCodeExchange, err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonNoIDToken, nil)
		return
	}
	want := idCheck{nonce: pl.Nonce}
	if pl.MaxAge != nil {
		d := time.Duration(*pl.MaxAge) * time.Second
		want.maxAge = &d
	}
	idt, claims, all, err := rp.verifyIDToken(ctx, p, rawID, want)
	switch {
	case errors.Is(err, errNonce):
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonNonce, err)
		return
	case err != nil:
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonIDToken, err)
		return
	}
	if err := checkAccessToken(tok.AccessToken, rawID, idt); err != nil {
		rp.loginFailed(w, r, http.StatusBadRequest, ReasonAccessToken, err)
		return
	}
	if su := pl.StepUp; su != nil {
		// A step-up must end with the same user, authenticated as
		// strongly and as recently as asked; the provider's word that it
		// tried is not enough. The session stays as it was otherwise.
		if claims.Subject != su.Subject {
			rp.stepUpFailed(w, r, su.Subject, ReasonStepUpSubject, fmt.Errorf("step-up of %q ended as %q", su.Subject, claims.Subject))
			return
		}
		req := stepup.Required{ACR: su.ACR}
		if pl.MaxAge != nil {
			req.MaxAge = time.Duration(*pl.MaxAge) * time.Second
		}
		a := stepup.Authentication{ACR: claims.ACR, AMR: claims.AMR, AuthTime: claims.AuthTime.value()}
		if ok, why := rp.levels.Satisfies(a, req, rp.now()); !ok {
			rp.stepUpFailed(w, r, su.Subject, ReasonStepUpWeak, errors.New(why))
			return
		}
	}
	var info map[string]any
	if rp.cfg.UserInfo {
		if info, err = rp.userInfo(ctx, p, tok, claims.Subject); err != nil {
			rp.loginFailed(w, r, http.StatusBadGateway, ReasonUserInfo, err)
			return
		}
	}

	rec := rp.record(claims, all, info)
	rec.Tokens = rp.tokens(tok, rawID, session.Tokens{})
	// The session is bound to the client that completed the sign-in; a
	// step-up binds the new session to the client that stepped up.
	if s := scope.From(r.Context()); s != nil && len(s.Fingerprint) > 0 {
		rec.Fingerprint = maps.Clone(s.Fingerprint)
	}
	// Session fixation: the session always gets a fresh id; a session the
	// request already had (or that an attacker planted) is deleted, never
	// adopted.
	var old session.ID
	if prev, err := rp.sessions.Load(r); err == nil {
		old = prev.ID()
	}
	if err := rp.sessions.Start(ctx, w, rec, old); err != nil {
		rp.loginFailed(w, r, http.StatusServiceUnavailable, ReasonSessionStore, err)
		return
	}
	if claims.SID != "" {
		rp.sids.add(claims.SID, rec.Hash(), rec.Expires, rp.now())
	}
	if pl.StepUp != nil {
		rp.emit(r, Event{Type: EventStepUpSuccess, Subject: rec.UserID, SessionHash: rec.Hash()})
	} else {
		rp.emit(r, Event{Type: EventLoginSuccess, Subject: rec.UserID, SessionHash: rec.Hash()})
	}
	ret, _ := SafeReturn(pl.Return)
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

// loginFailed logs err (never shown to the browser), emits the event and
// renders a page that says only what the user can do about it.
func (rp *RP) loginFailed(w http.ResponseWriter, r *http.Request, status int, reason string, err error) {
	attrs := []slog.Attr{slog.String("reason", reason)}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: login failed", attrs...)
	rp.emit(r, Event{Type: EventLoginFailure, Reason: reason})
	msg := "auth.error.login_failed"
	switch status {
	case http.StatusForbidden:
		msg = "auth.error.login_refused"
	case http.StatusServiceUnavailable:
		msg = "auth.error.login_unavailable"
	}
	renderError(w, r, status, msg)
}

// stateKey is what the replay cache keeps of a state.
func stateKey(state string) string { return "state\x00" + state }

// tokens turns a token response into session tokens; prev supplies what a
// refresh response may leave out (RFC 6749 §6: the refresh token, and an
// ID token, OIDC Core §12.2). The access token, checked by the caller, is
// not kept (see session.Tokens).
func (rp *RP) tokens(tok *oauth2.Token, rawID string, prev session.Tokens) session.Tokens {
	t := session.Tokens{IDToken: rawID, RefreshToken: tok.RefreshToken}
	if t.IDToken == "" {
		t.IDToken = prev.IDToken
	}
	if t.RefreshToken == "" {
		t.RefreshToken = prev.RefreshToken
	}
	// Without a refresh token there is nothing to renew, and the session
	// lives by its own timeouts and the provider's back-channel logout;
	// the expiry is taken from expires_in with the injected clock, as
	// x/oauth2 computes its own with the wall clock.
	if tok.ExpiresIn > 0 && t.RefreshToken != "" {
		t.Expiry = rp.now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return t
}

// userInfo fetches the userinfo claims; their sub must be the ID token's
// (OIDC Core §5.3.4), or they describe someone else.
func (rp *RP) userInfo(ctx context.Context, p *provider, tok *oauth2.Token, sub string) (map[string]any, error) {
	ui, err := p.oidc.UserInfo(rp.clientContext(ctx), oauth2.StaticTokenSource(tok))
	if err != nil {
		return nil, err
	}
	if ui.Subject != sub {
		return nil, fmt.Errorf("auth: userinfo sub is not the ID token's")
	}
	var m map[string]any
	if err := ui.Claims(&m); err != nil {
		return nil, err
	}
	return m, nil
}
