package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// backChannelEvent is the event a logout token carries (OpenID Connect
// Back-Channel Logout 1.0 §2.4).
const backChannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backChannelLogout honours a logout token the provider POSTs when a user's
// session there ends (Back-Channel Logout 1.0 §2.5 to §2.8): it verifies
// the token, refuses a replay, and revokes the matching sessions.
//
// Which sessions: when the token has a sid that this process saw at login,
// exactly the sessions started in that provider session; otherwise, when
// it has a sub, every session of that user (session.Manager.RevokeUser),
// so that a sid this replica never saw (another replica's login, or a
// restart) still ends the user's sessions rather than none.
func (rp *RP) backChannelLogout(w http.ResponseWriter, r *http.Request) {
	// §2.8: the response must not be cached.
	w.Header().Set("Cache-Control", "no-store")
	p := rp.provider()
	if p == nil {
		rp.backChannelFailed(w, r, "the provider's keys are not available yet", nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		rp.backChannelFailed(w, r, "the request body is not a form", err)
		return
	}
	toks := r.PostForm["logout_token"]
	if len(toks) != 1 || toks[0] == "" {
		rp.backChannelFailed(w, r, "exactly one logout_token is required", nil)
		return
	}
	lt, err := rp.verifyLogoutToken(r.Context(), p, toks[0])
	if err != nil {
		rp.backChannelFailed(w, r, "invalid logout token", err)
		return
	}
	// §2.6 step 7: a jti already honoured is a replay. Kept until the
	// token could no longer pass the expiry and iat checks anyway.
	now := rp.now()
	key := "jti\x00" + lt.Issuer + "\x00" + lt.TokenID
	until := later(lt.Expiry, lt.IssuedAt.Add(rp.cfg.LogoutTokenMaxAge)).Add(rp.cfg.ClockSkew)
	if !rp.jtis.add(key, until, now) {
		rp.backChannelFailed(w, r, "logout token already used", nil)
		return
	}
	n, err := rp.revokeFor(r.Context(), lt.Subject, lt.SessionID)
	if err != nil {
		// Let the provider retry the same token.
		rp.jtis.remove(key)
		rp.backChannelFailed(w, r, "the sessions could not be revoked", err)
		return
	}
	rp.log.LogAttrs(r.Context(), slog.LevelInfo, "auth: back-channel logout", slog.String("subject", lt.Subject), slog.Int("sessions", n))
	rp.emit(r, Event{Type: EventBackChannelLogout, Subject: lt.Subject, Reason: ReasonProviderLogout})
	w.WriteHeader(http.StatusOK)
}

// backChannelFailed answers 400 with an OAuth-style error body (§2.8).
func (rp *RP) backChannelFailed(w http.ResponseWriter, r *http.Request, desc string, err error) {
	attrs := []slog.Attr{slog.String("problem", desc)}
	if err != nil {
		attrs = append(attrs, slog.Any("err", err))
	}
	rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: back-channel logout refused", attrs...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": desc})
}

// verifyLogoutToken validates a logout token (§2.6). go-oidc checks the
// signature (configured algorithms only), iss, aud, the presence of the
// back-channel event, jti and exp, sub or sid, and the absence of nonce,
// which keeps an ID token from passing as a logout token. This adds the
// token type, exp with leeway, an iat that is neither in the future nor
// older than logout_token_max_age, and an event value that is an object.
func (rp *RP) verifyLogoutToken(ctx context.Context, p *provider, raw string) (*oidc.LogoutToken, error) {
	if err := checkType(raw, rp.cfg.SigningAlgs, "logout+jwt", "jwt", "application/jwt"); err != nil {
		return nil, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	lt, err := p.verifier.VerifyLogout(rp.clientContext(ctx), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	var c struct {
		IssuedAt *numericDate               `json:"iat"`
		Events   map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", errLogoutToken, err)
	}
	now, skew := rp.now(), rp.cfg.ClockSkew
	ev := bytes.TrimSpace(c.Events[backChannelEvent])
	switch {
	case c.IssuedAt == nil:
		err = errors.New("iat missing")
	case c.IssuedAt.After(now.Add(skew)):
		err = errors.New("iat in the future")
	case now.Sub(c.IssuedAt.Time) > rp.cfg.LogoutTokenMaxAge+skew:
		err = errors.New("iat too old")
	case !now.Before(lt.Expiry.Add(skew)):
		err = errors.New("expired")
	case len(ev) == 0 || ev[0] != '{':
		err = errors.New("the back-channel logout event is not an object")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLogoutToken, err)
	}
	return lt, nil
}

// revokeFor revokes the sessions of provider session sid, or of user sub
// (see backChannelLogout), and reports how many it ended.
func (rp *RP) revokeFor(ctx context.Context, sub, sid string) (int, error) {
	ctx = context.WithoutCancel(ctx)
	if sid != "" {
		if hashes, known := rp.sids.take(sid, rp.now()); known {
			var errs []error
			for _, h := range hashes {
				if err := rp.sessions.RevokeSession(ctx, h); err != nil {
					errs = append(errs, err)
				}
			}
			return len(hashes) - len(errs), errors.Join(errs...)
		}
	}
	if sub == "" {
		return 0, nil
	}
	return rp.sessions.RevokeUser(ctx, sub)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
