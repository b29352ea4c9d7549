package idp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crmgate/crmgate/i18n"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/crypto/bcrypt"
)

const (
	loginPath        = "/login"
	otpPath          = "/login/otp"
	authRequestParam = "authRequestID"
	// Cookies carry the __Host- prefix: Secure, no Domain, Path=/.
	sessionCookie = "__Host-idp_session"
	browserCookie = "__Host-idp_browser"
	// maxFormBytes bounds a login form body.
	maxFormBytes = 16 << 10
)

// dummyHash is compared against when the username is unknown, so that an
// unknown user costs as much time as a wrong password.
const dummyHash = "$2a$10$DaNugNUwjUkfK3sET0R0J.Ogi0mRxHVasgQ2FKF4cYlLvY5RnyQCW"

var errBadCSRF = errors.New("csrf token mismatch")

// loginPage starts a sign-in: it reuses the single sign-on session when the
// request allows, asks only for the second factor when the session lacks it,
// and otherwise shows the password form.
func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) error {
	a, err := p.authRequest(r.URL.Query().Get(authRequestParam))
	if err != nil {
		return err
	}
	browser := p.browser(w, r)
	if a.done {
		return p.toCallback(w, r, a)
	}
	if sess, ok := p.sessions.get(cookieValue(r, sessionCookie)); ok && p.reusable(a, sess) {
		u, err := p.store.user(sess.username)
		if err != nil {
			return err
		}
		if !p.needsMFA(a, u) || sess.mfa() {
			return p.finish(w, r, a, sess, browser)
		}
		if a.promptNone() {
			op.AuthRequestError(w, r, a, oidc.ErrInteractionRequired().WithDescription("a second factor is required"), p.op)
			return nil
		}
		// Step-up: the session vouches for the password.
		if err := p.store.setPending(a.id, sess.username); err != nil {
			return expired(err)
		}
		return p.redirect(w, r, otpPath, a)
	}
	if a.promptNone() {
		op.AuthRequestError(w, r, a, oidc.ErrLoginRequired(), p.op)
		return nil
	}
	p.renderLogin(w, r, http.StatusOK, a, browser, a.loginHint, "")
	return nil
}

// loginSubmit checks the password.
func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	a, browser, err := p.postedRequest(w, r)
	if err != nil {
		return err
	}
	if a.done {
		return p.toCallback(w, r, a)
	}
	username := strings.TrimSpace(r.PostForm.Get("username"))
	password := r.PostForm.Get("password")
	if d := p.guard.locked(username); d > 0 {
		p.log.Warn("login refused, account locked", "user", username, "client", a.clientID)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		p.renderLogin(w, r, http.StatusTooManyRequests, a, browser, username, lockedMessage(r, d))
		return nil
	}
	u, known := p.store.users[username]
	hash := dummyHash
	if known {
		hash = u.PasswordHash
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || !known {
		msg := i18n.T(i18n.For(r), "idp.error.wrong_password")
		if p.guard.fail(username) {
			msg = lockedMessage(r, LockoutDuration)
		}
		p.log.Warn("login failed", "user", username, "client", a.clientID, "reason", "password")
		p.renderLogin(w, r, http.StatusUnprocessableEntity, a, browser, username, msg)
		return nil
	}
	if p.needsMFA(a, u) {
		if err := p.store.setPending(a.id, username); err != nil {
			return expired(err)
		}
		return p.redirect(w, r, otpPath, a)
	}
	p.guard.reset(username)
	return p.finish(w, r, a, p.signIn(w, r, username, []string{AMRPassword}), browser)
}

// otpPage asks for the second factor of a request whose password step passed.
func (p *Provider) otpPage(w http.ResponseWriter, r *http.Request) error {
	a, err := p.authRequest(r.URL.Query().Get(authRequestParam))
	if err != nil {
		return err
	}
	browser := p.browser(w, r)
	if a.done {
		return p.toCallback(w, r, a)
	}
	if a.pendingUser == "" {
		return p.redirect(w, r, loginPath, a)
	}
	p.renderOTP(w, r, http.StatusOK, a, browser, "")
	return nil
}

// otpSubmit checks the TOTP code.
func (p *Provider) otpSubmit(w http.ResponseWriter, r *http.Request) error {
	a, browser, err := p.postedRequest(w, r)
	if err != nil {
		return err
	}
	if a.done {
		return p.toCallback(w, r, a)
	}
	if a.pendingUser == "" {
		return p.redirect(w, r, loginPath, a)
	}
	username := a.pendingUser
	if d := p.guard.locked(username); d > 0 {
		p.log.Warn("second factor refused, account locked", "user", username, "client", a.clientID)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		p.renderOTP(w, r, http.StatusTooManyRequests, a, browser, lockedMessage(r, d))
		return nil
	}
	u, err := p.store.user(username)
	if err != nil {
		return err
	}
	if err := p.guard.verifyTOTP(username, u.TOTPSecret, strings.TrimSpace(r.PostForm.Get("otp"))); err != nil {
		lang := i18n.For(r)
		msg := i18n.T(lang, "idp.error.wrong_code")
		if errors.Is(err, errReplayedOTP) {
			msg = i18n.T(lang, "idp.error.code_reused")
		}
		if p.guard.fail(username) {
			msg = lockedMessage(r, LockoutDuration)
		}
		p.log.Warn("login failed", "user", username, "client", a.clientID, "reason", "otp", "error", err)
		p.renderOTP(w, r, http.StatusUnprocessableEntity, a, browser, msg)
		return nil
	}
	p.guard.reset(username)
	return p.finish(w, r, a, p.signIn(w, r, username, []string{AMRPassword, AMROTP}), browser)
}

// lockedMessage tells the person at r how long the account stays locked.
func lockedMessage(r *http.Request, d time.Duration) string {
	return i18n.T(i18n.For(r), "idp.error.locked", int(math.Ceil(d.Minutes())))
}

// authRequest loads a live request or explains to the person what to do.
func (p *Provider) authRequest(id string) (*authRequest, error) {
	a, err := p.store.authRequest(id)
	if err != nil {
		return nil, expired(err)
	}
	return a, nil
}

func expired(err error) error {
	return &httpError{Status: http.StatusBadRequest, Public: "idp.error.request_expired", Err: err}
}

// postedRequest parses a login form and checks its CSRF token, which binds
// the form to both the auth request and this browser.
func (p *Provider) postedRequest(w http.ResponseWriter, r *http.Request) (*authRequest, string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return nil, "", &httpError{Status: http.StatusBadRequest, Public: "idp.error.form_unreadable", Err: err}
	}
	a, err := p.authRequest(r.PostForm.Get(authRequestParam))
	if err != nil {
		return nil, "", err
	}
	browser := cookieValue(r, browserCookie)
	if browser == "" || !hmac.Equal([]byte(p.csrfToken(a.id, browser)), []byte(r.PostForm.Get("csrf"))) {
		return nil, "", &httpError{Status: http.StatusForbidden, Public: "idp.error.form_expired", Err: errBadCSRF}
	}
	return a, browser, nil
}

func (p *Provider) csrfToken(authRequestID, browser string) string {
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(authRequestID))
	m.Write([]byte{0})
	m.Write([]byte(browser))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// browser returns the browser's binding cookie, setting one if it has none.
func (p *Provider) browser(w http.ResponseWriter, r *http.Request) string {
	if v := cookieValue(r, browserCookie); v != "" {
		return v
	}
	v := randomToken()
	http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return v
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// reusable reports whether the session may answer the request without a new
// authentication: same user as an id_token_hint, and within max_age (which
// the library sets to 0 for prompt=login).
func (p *Provider) reusable(a *authRequest, sess session) bool {
	if a.hintSubject != "" && a.hintSubject != sess.username {
		return false
	}
	if a.maxAge != nil {
		if *a.maxAge == 0 || p.now().Sub(sess.authTime) > time.Duration(*a.maxAge)*time.Second {
			return false
		}
	}
	return true
}

func (p *Provider) needsMFA(a *authRequest, u User) bool { return a.wantsMFA() || u.AlwaysMFA }

// signIn records a completed authentication in the session cookie.
func (p *Provider) signIn(w http.ResponseWriter, r *http.Request, username string, amr []string) session {
	sess, replaced := p.sessions.establish(cookieValue(r, sessionCookie), username, amr)
	if replaced != nil {
		p.endSession(r.Context(), *replaced, "another user signed in")
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.cookie, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: sess.expires})
	return sess
}

// finish completes the request with the session and sends the browser to the
// library's callback, which issues the code.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, a *authRequest, sess session, browser string) error {
	if err := p.store.complete(a.id, sess, browser); err != nil {
		return expired(err)
	}
	p.sessions.addClient(sess.sid, a.clientID)
	p.log.Info("login", "user", sess.username, "client", a.clientID, "amr", sess.amr, "acr", sess.acr())
	return p.toCallback(w, r, a)
}

func (p *Provider) toCallback(w http.ResponseWriter, r *http.Request, a *authRequest) error {
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), a.id), http.StatusSeeOther)
	return nil
}

func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, path string, a *authRequest) error {
	http.Redirect(w, r, path+"?"+url.Values{authRequestParam: {a.id}}.Encode(), http.StatusSeeOther)
	return nil
}

// renderLogin shows the password form; msg is an error already in the
// request's language.
func (p *Provider) renderLogin(w http.ResponseWriter, r *http.Request, status int, a *authRequest, browser, username, msg string) {
	p.renderPage(w, r, status, "login", pageData{
		Title: "idp.page.sign_in_title", Client: a.clientID, AuthRequestID: a.id, CSRF: p.csrfToken(a.id, browser),
		Username: username, Error: msg,
	}, []string{originOf(a.redirectURI)})
}

// renderOTP shows the second-factor form; msg is an error already in the
// request's language.
func (p *Provider) renderOTP(w http.ResponseWriter, r *http.Request, status int, a *authRequest, browser, msg string) {
	p.renderPage(w, r, status, "otp", pageData{
		Title: "idp.page.otp_title", Client: a.clientID, AuthRequestID: a.id, CSRF: p.csrfToken(a.id, browser),
		Username: a.pendingUser, Error: msg,
	}, []string{originOf(a.redirectURI)})
}

// originOf returns scheme://host of a validated redirect URI.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// guardCallback lets only the browser that signed in collect the code at the
// library's callback: the auth request id travels in URLs, the binding
// cookie does not.
func (p *Provider) guardCallback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := p.store.authRequest(r.URL.Query().Get("id"))
		if err == nil && a.done && a.browser != cookieValue(r, browserCookie) {
			p.log.Warn("callback from another browser refused", "client", a.clientID)
			p.renderPage(w, r, http.StatusForbidden, "error", pageData{Title: "idp.page.problem_title",
				Error: i18n.T(i18n.For(r), "idp.error.other_browser")}, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}
