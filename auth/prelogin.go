package auth

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxPending is how many logins a browser may have under way at once (one
// per tab that hit a login); starting another drops the oldest. Each
// pending login is its own cookie, so tabs never overwrite each other's.
const maxPending = 4

// pendingLogin is what a pre-login cookie holds: everything the callback
// must compare with the authorization response, and nothing else.
type pendingLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
	Created  int64  `json:"c"` // unix seconds
	Expires  int64  `json:"e"` // unix seconds
	// MaxAge is the max_age requested (seconds), nil when none was.
	MaxAge *int64 `json:"m,omitempty"`
	// StepUp is set when the login is a step-up of a signed-in user.
	StepUp *pendingStepUp `json:"u,omitempty"`
}

// pendingStepUp is what the callback of a step-up checks: the same user,
// now authenticated at ACR.
type pendingStepUp struct {
	ACR     string `json:"a"`
	Subject string `json:"s"`
}

var (
	errLoginCookie  = errors.New("auth: pre-login cookie does not open")
	errLoginExpired = errors.New("auth: login took too long")
)

// loginCookieName names the pre-login cookie of state: the configured name,
// "-", and a hash of the state, so the callback finds its cookie from the
// state parameter alone.
func (rp *RP) loginCookieName(state string) string {
	h := sha256.Sum256([]byte(state))
	return rp.cfg.LoginCookieName + "-" + base64.RawURLEncoding.EncodeToString(h[:12])
}

// sealLogin encrypts and authenticates pl with AES-256-GCM under the
// pre-login key. The cookie name is the additional data: a sealed value
// moved under another state's name does not open.
func (rp *RP) sealLogin(name string, pl pendingLogin) string {
	pt, _ := json.Marshal(pl) // plain strings and numbers: cannot fail
	nonce := make([]byte, rp.seal.NonceSize(), rp.seal.NonceSize()+len(pt)+rp.seal.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(rp.seal.Seal(nonce, nonce, pt, []byte(name)))
}

func (rp *RP) openLogin(name, value string) (pendingLogin, error) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < rp.seal.NonceSize()+rp.seal.Overhead() {
		return pendingLogin{}, errLoginCookie
	}
	n := rp.seal.NonceSize()
	pt, err := rp.seal.Open(nil, b[:n], b[n:], []byte(name))
	if err != nil {
		return pendingLogin{}, errLoginCookie
	}
	var pl pendingLogin
	if err := json.Unmarshal(pt, &pl); err != nil {
		return pendingLogin{}, errLoginCookie
	}
	return pl, nil
}

// setLoginCookie sets a pre-login cookie: __Host- (Secure, Path=/, no
// Domain), HttpOnly, and SameSite=Lax so that it rides along on the
// provider's top-level redirect back to the callback but on no cross-site
// subrequest or POST.
func (rp *RP) setLoginCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// prunePending expires the request's pre-login cookies that no longer open
// or have expired, and the oldest ones beyond keep.
func (rp *RP) prunePending(w http.ResponseWriter, r *http.Request, keep int) {
	type live struct {
		name    string
		created int64
	}
	var alive []live
	now := rp.now().Unix()
	prefix := rp.cfg.LoginCookieName + "-"
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, prefix) {
			continue
		}
		pl, err := rp.openLogin(c.Name, c.Value)
		if err != nil || now >= pl.Expires {
			rp.setLoginCookie(w, c.Name, "", -1)
			continue
		}
		alive = append(alive, live{c.Name, pl.Created})
	}
	if len(alive) <= keep {
		return
	}
	slices.SortFunc(alive, func(a, b live) int { return cmp.Compare(a.created, b.created) })
	for _, l := range alive[:len(alive)-keep] {
		rp.setLoginCookie(w, l.name, "", -1)
	}
}

// takeLogin finds, opens and checks the pending login of state, and
// expires its cookie: a state is good for one callback.
func (rp *RP) takeLogin(w http.ResponseWriter, r *http.Request, state string) (pendingLogin, error) {
	name := rp.loginCookieName(state)
	var (
		pl    pendingLogin
		err   = errLoginCookie
		found bool
	)
	for _, c := range r.CookiesNamed(name) {
		found = true
		if pl, err = rp.openLogin(name, c.Value); err == nil {
			break
		}
	}
	if !found {
		return pendingLogin{}, errNoPendingLogin
	}
	rp.setLoginCookie(w, name, "", -1)
	if err != nil {
		return pendingLogin{}, err
	}
	if !constantEqual(pl.State, state) {
		// Only a forgery with the sealing key gets here.
		return pendingLogin{}, errLoginCookie
	}
	if rp.now().Unix() >= pl.Expires {
		return pendingLogin{}, errLoginExpired
	}
	return pl, nil
}
