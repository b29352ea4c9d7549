package auth

import (
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// LoginOption asks the provider for a particular authentication, for a
// step-up (RFC 9470 names the same parameters for APIs).
type LoginOption func(*loginOptions)

type loginOptions struct {
	acr         []string
	maxAge      *time.Duration
	promptLogin bool
	stepUp      *pendingStepUp
}

// withStepUp makes the login a step-up of subject to level acr: the
// provider is asked for acr and a fresh sign-in, and the callback refuses
// a token of another user or of a weaker authentication.
func withStepUp(acr, subject string) LoginOption {
	return func(o *loginOptions) {
		o.acr = append(o.acr, acr)
		o.promptLogin = true
		o.stepUp = &pendingStepUp{ACR: acr, Subject: subject}
	}
}

// WithACRValues asks for one of the authentication context classes, in
// order of preference (OIDC Core §3.1.2.1 acr_values).
func WithACRValues(acr ...string) LoginOption {
	return func(o *loginOptions) { o.acr = append(o.acr, acr...) }
}

// WithMaxAge asks for an authentication no older than d (OIDC Core
// §3.1.2.1 max_age); the callback then refuses an ID token whose auth_time
// is older. Zero forces a fresh authentication.
func WithMaxAge(d time.Duration) LoginOption {
	return func(o *loginOptions) { o.maxAge = &d }
}

// WithPromptLogin asks the provider to authenticate the user again even
// with a single sign-on session (prompt=login).
func WithPromptLogin() LoginOption {
	return func(o *loginOptions) { o.promptLogin = true }
}

// Login starts the authorization code flow: it remembers a fresh state,
// nonce and PKCE verifier in a sealed pre-login cookie and redirects the
// browser to the provider. returnTo is where the browser goes after the
// callback; anything but a same-origin relative path becomes "/" (see
// SafeReturn). While the provider is unreachable it answers 503 instead.
func (rp *RP) Login(w http.ResponseWriter, r *http.Request, returnTo string, opts ...LoginOption) {
	if rp.err != nil {
		renderError(w, r, http.StatusServiceUnavailable, "auth.error.not_configured")
		return
	}
	p := rp.provider()
	if p == nil {
		rp.emit(r, Event{Type: EventLoginFailure, Reason: ReasonIdPUnavailable})
		renderUnavailable(w, r)
		return
	}
	var o loginOptions
	for _, f := range opts {
		f(&o)
	}
	ret, _ := SafeReturn(returnTo)
	now := rp.now()
	pl := pendingLogin{
		// rand.Text is 26 base32 characters: 130 bits, past the 128 that
		// RFC 9700 §4.7.1 and OIDC Core §15.5.2 ask of state and nonce.
		State:    rand.Text(),
		Nonce:    rand.Text(),
		Verifier: oauth2.GenerateVerifier(),
		Return:   ret,
		Created:  now.Unix(),
		Expires:  now.Add(rp.cfg.LoginTTL).Unix(),
		StepUp:   o.stepUp,
	}
	params := []oauth2.AuthCodeOption{
		// PKCE with S256 always (RFC 7636 §4.2, RFC 9700 §2.1.1): a code
		// stolen from the redirect is useless without the verifier, which
		// never leaves this browser's sealed cookie and the gateway.
		oauth2.S256ChallengeOption(pl.Verifier),
		oidc.Nonce(pl.Nonce),
	}
	if len(o.acr) > 0 {
		params = append(params, oauth2.SetAuthURLParam("acr_values", strings.Join(o.acr, " ")))
	}
	if o.maxAge != nil {
		secs := int64(max(*o.maxAge, 0) / time.Second)
		pl.MaxAge = &secs
		params = append(params, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(secs, 10)))
	}
	if o.promptLogin {
		params = append(params, oauth2.SetAuthURLParam("prompt", "login"))
	}

	rp.prunePending(w, r, maxPending-1)
	name := rp.loginCookieName(pl.State)
	rp.setLoginCookie(w, name, rp.sealLogin(name, pl), rp.cfg.LoginTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(pl.State, params...), http.StatusSeeOther)
}
