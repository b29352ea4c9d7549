package idp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// backChannelEvent is the event of a logout_token (Back-Channel Logout
	// 1.0 §2.4).
	backChannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenTTL keeps logout tokens short-lived, as §2.4 recommends.
	logoutTokenTTL = 2 * time.Minute
	// backChannelTimeout bounds each POST to a client.
	backChannelTimeout = 5 * time.Second
	// logoutTokenType is the typ header §2.4 recommends.
	logoutTokenType = "logout+jwt"
)

// providerStorage is the op.Storage the library gets: the storage plus
// RP-initiated logout, which needs the Provider's sessions and back-channel
// sender.
type providerStorage struct {
	*storage
	p *Provider
}

var _ op.CanTerminateSessionFromRequest = providerStorage{}

// TerminateSessionFromRequest ends the session that the library validated an
// end_session request for: the one named by the id_token_hint's sid, or else
// the browser's own session.
func (ps providerStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	ps.p.terminate(ctx, req)
	return req.RedirectURI, nil
}

// logoutContextKey carries the end_session request's browser state from
// withLogoutContext to terminate, across the library.
type logoutContextKey struct{}

type logoutContext struct {
	w      http.ResponseWriter
	cookie string
}

func (p *Provider) withLogoutContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc := &logoutContext{w: w, cookie: cookieValue(r, sessionCookie)}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), logoutContextKey{}, lc)))
	})
}

func (p *Provider) terminate(ctx context.Context, req *op.EndSessionRequest) {
	lc, _ := ctx.Value(logoutContextKey{}).(*logoutContext)
	var browserSess session
	var inBrowser bool
	if lc != nil {
		browserSess, inBrowser = p.sessions.get(lc.cookie)
	}
	sid := ""
	if req.IDTokenHintClaims != nil {
		sid = req.IDTokenHintClaims.SessionID
	}
	if sid == "" && inBrowser && (req.UserID == "" || req.UserID == browserSess.username) {
		sid = browserSess.sid
	}
	ended := false
	if sid != "" {
		if sess, ok := p.sessions.remove(sid, req.UserID); ok {
			p.endSession(ctx, sess, "logout")
			ended = true
		}
	}
	if !ended && req.UserID != "" && req.ClientID != "" {
		_ = p.store.TerminateSession(ctx, req.UserID, req.ClientID)
		p.log.Info("logout without a session; the client's tokens are revoked", "user", req.UserID, "client", req.ClientID)
	}
	if lc != nil && inBrowser && (ended && browserSess.sid == sid) {
		http.SetCookie(lc.w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteLaxMode, MaxAge: -1})
	}
}

// endSession revokes the session's tokens and tells every client that got a
// login in it, through its back-channel logout URI. The POSTs run in
// parallel and are awaited, so that the logout is complete when the browser
// is redirected.
func (p *Provider) endSession(ctx context.Context, sess session, reason string) {
	n := p.store.revokeSession(sess.sid)
	p.log.Info("session ended", "user", sess.username, "reason", reason, "tokens_revoked", n)
	ids := make([]string, 0, len(sess.clients))
	for id := range sess.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var wg sync.WaitGroup
	for _, id := range ids {
		c, ok := p.store.clients[id]
		if !ok || c.backChannel == "" {
			continue
		}
		wg.Go(func() {
			if err := p.sendLogoutToken(ctx, c, sess); err != nil {
				p.log.Warn("back-channel logout failed", "client", c.id, "error", err)
				return
			}
			p.log.Info("back-channel logout delivered", "client", c.id, "user", sess.username)
		})
	}
	wg.Wait()
}

// sendLogoutToken POSTs a signed logout_token (Back-Channel Logout 1.0 §2.5).
func (p *Provider) sendLogoutToken(ctx context.Context, c *client, sess session) error {
	tok, err := p.logoutToken(c.id, sess)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backChannelTimeout)
	defer cancel()
	body := url.Values{"logout_token": {tok}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.backChannel, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.backChannel.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	// §2.8: 200 OK, though frameworks may answer 204 for an empty body.
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", c.backChannel, resp.Status)
	}
	return nil
}

// logoutToken signs the logout_token for client clientID (§2.4): iss, aud,
// iat, exp, jti, events, sub and sid; never a nonce.
func (p *Provider) logoutToken(clientID string, sess session) (string, error) {
	kp, err := p.keys.signing()
	if err != nil {
		return "", err
	}
	now := p.now()
	claims := &oidc.LogoutTokenClaims{
		Issuer:     p.issuer,
		Subject:    sess.username,
		Audience:   oidc.Audience{clientID},
		IssuedAt:   oidc.FromTime(now),
		Expiration: oidc.FromTime(now.Add(logoutTokenTTL)),
		JWTID:      randomToken(),
		Events:     map[string]any{backChannelEvent: struct{}{}},
		SessionID:  sess.sid,
	}
	signer, err := kp.signer(logoutTokenType)
	if err != nil {
		return "", err
	}
	return crypto.Sign(claims, signer)
}

// loggedOut is where a logout without a post_logout_redirect_uri ends.
func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request) {
	p.renderPage(w, r, http.StatusOK, "message", pageData{Title: "idp.page.signed_out_title", Message: "idp.page.signed_out"}, nil)
}
