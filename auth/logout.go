package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/crmgate/crmgate/session"
)

const (
	// CSRFField is the form field (and CSRFHeader the header) that carries
	// the logout CSRF token.
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
	// maxFormBytes bounds the logout and back-channel logout bodies.
	maxFormBytes = 64 << 10
)

// CSRFToken returns the token a logout request for rec's session must
// carry: an HMAC, under a key derived from the configuration, of the
// session's cookie value. It is fixed for the session's life, unknowable
// without the cookie, and worthless for any other session; pages that
// offer a logout button put it in a hidden field named CSRFField.
func (rp *RP) CSRFToken(rec *session.Record) string {
	if rp.sessions == nil || rec == nil || rec.ID().IsZero() {
		return ""
	}
	m := hmac.New(sha256.New, rp.csrfKey)
	m.Write([]byte("logout\x00"))
	m.Write([]byte(rp.sessions.Codec().Encode(rec.ID())))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// logoutPage answers GET on the logout path with a form that posts the
// logout: a link or an image cannot log anyone out, a button can.
func (rp *RP) logoutPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	rec, err := rp.sessions.Load(r)
	if err != nil {
		renderMessage(w, r, http.StatusOK, "auth.page.signed_out_title", "auth.page.not_signed_in")
		return
	}
	renderLogoutForm(w, r, rp.cfg.LogoutPath, rp.CSRFToken(rec))
}

// logout ends the session and sends the browser to the provider's
// end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0 §2), so the
// single sign-on session ends too. Only a POST from this origin with the
// session's CSRF token is honoured: a cross-site form must not be able to
// log users out (or a later login in on the attacker's account).
func (rp *RP) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !rp.sameOrigin(r) {
		rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: cross-site logout refused",
			slog.String("origin", r.Header.Get("Origin")), slog.String("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")))
		renderError(w, r, http.StatusForbidden, "auth.error.logout_cross_site")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		renderError(w, r, http.StatusBadRequest, "auth.error.logout_form_unreadable")
		return
	}
	rec, err := rp.sessions.Load(r)
	if err != nil {
		// No session: nothing to protect, nothing to end but the cookie.
		_ = rp.sessions.End(r.Context(), w, session.ID{})
		http.Redirect(w, r, rp.afterLogout(), http.StatusSeeOther)
		return
	}
	got := r.PostForm.Get(CSRFField)
	if got == "" {
		got = r.Header.Get(CSRFHeader)
	}
	if !hmac.Equal([]byte(got), []byte(rp.CSRFToken(rec))) {
		rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: logout without a valid CSRF token refused", slog.String("id_hash", rec.Hash()))
		renderError(w, r, http.StatusForbidden, "auth.error.logout_form_expired")
		return
	}
	if err := rp.sessions.End(r.Context(), w, rec.ID()); err != nil {
		rp.log.LogAttrs(r.Context(), slog.LevelError, "auth: ending session", slog.String("id_hash", rec.Hash()), slog.Any("err", err))
		renderError(w, r, http.StatusServiceUnavailable, "auth.error.logout_unavailable")
		return
	}
	rp.emit(r, Event{Type: EventLogout, Subject: rec.UserID, SessionHash: rec.Hash(), Reason: ReasonLocal})
	http.Redirect(w, r, rp.endSessionURL(rec.Tokens.IDToken), http.StatusSeeOther)
}

// sameOrigin checks the browser's own account of where a request came
// from, in addition to the CSRF token: Sec-Fetch-Site (Fetch Metadata)
// must be same-origin or none (typed by the user), and Origin, when sent,
// must be the gateway's. Clients that send neither pass on the token
// alone.
func (rp *RP) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return strings.EqualFold(o, rp.origin)
	}
	return true
}

// endSessionURL is the provider's end_session_endpoint with id_token_hint,
// client_id and post_logout_redirect_uri, or where to go when the provider
// has none or is unreachable (the local logout is done either way).
func (rp *RP) endSessionURL(idToken string) string {
	p := rp.prov.Load()
	if p == nil || p.endSession == "" {
		return rp.afterLogout()
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return rp.afterLogout()
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", rp.cfg.ClientID)
	if rp.cfg.PostLogoutRedirectURL != "" {
		q.Set("post_logout_redirect_uri", rp.cfg.PostLogoutRedirectURL)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (rp *RP) afterLogout() string {
	if rp.cfg.PostLogoutRedirectURL != "" {
		return rp.cfg.PostLogoutRedirectURL
	}
	return "/"
}
