package idp

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// session is a single sign-on session at the provider, named by a secret
// cookie. Its sid is the public name relying parties see (Back-Channel
// Logout 1.0 §2.1); the cookie value never leaves the browser and here.
type session struct {
	cookie   string
	sid      string
	username string
	authTime time.Time
	amr      []string
	expires  time.Time
	clients  map[string]bool // clients that got a login in this session
}

func (s session) mfa() bool { return slices.Contains(s.amr, AMROTP) }

func (s session) acr() string {
	if s.mfa() {
		return ACRMFA
	}
	return ACRPassword
}

func (s *session) clone() session {
	c := *s
	c.amr = slices.Clone(s.amr)
	c.clients = maps.Clone(s.clients)
	return c
}

// sessionStore holds the sessions by cookie value.
type sessionStore struct {
	now func() time.Time
	ttl time.Duration

	mu       sync.Mutex
	byCookie map[string]*session
}

func newSessionStore(now func() time.Time, ttl time.Duration) *sessionStore {
	return &sessionStore{now: now, ttl: ttl, byCookie: make(map[string]*session)}
}

// get returns the live session named by cookie.
func (st *sessionStore) get(cookie string) (session, bool) {
	if cookie == "" {
		return session{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byCookie[cookie]
	if !ok {
		return session{}, false
	}
	if !st.now().Before(s.expires) {
		delete(st.byCookie, cookie)
		return session{}, false
	}
	return s.clone(), true
}

// establish records an authentication by username with amr in the browser
// that holds prevCookie. The cookie value always changes (against session
// fixation); the same user keeps the sid and the list of clients, so that a
// later logout still reaches them. A different user's session is removed and
// returned as replaced, for the caller to log out.
func (st *sessionStore) establish(prevCookie, username string, amr []string) (cur session, replaced *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	s := &session{sid: randomToken(), clients: make(map[string]bool)}
	if prev, ok := st.byCookie[prevCookie]; ok {
		delete(st.byCookie, prevCookie)
		if prev.username == username && now.Before(prev.expires) {
			s = prev
		} else {
			old := prev.clone()
			replaced = &old
		}
	}
	s.cookie = randomToken()
	s.username = username
	s.authTime = now
	s.amr = slices.Clone(amr)
	s.expires = now.Add(st.ttl)
	st.byCookie[s.cookie] = s
	st.pruneLocked(now)
	return s.clone(), replaced
}

// addClient records that clientID got a login in the session sid.
func (st *sessionStore) addClient(sid, clientID string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range st.byCookie {
		if s.sid == sid {
			s.clients[clientID] = true
		}
	}
}

// remove ends the session sid and returns it; when username is not empty
// the session must be that user's.
func (st *sessionStore) remove(sid, username string) (session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for c, s := range st.byCookie {
		if s.sid == sid && (username == "" || s.username == username) {
			delete(st.byCookie, c)
			return s.clone(), true
		}
	}
	return session{}, false
}

// pruneLocked drops expired sessions. Must be called with st.mu held.
func (st *sessionStore) pruneLocked(now time.Time) {
	for c, s := range st.byCookie {
		if !now.Before(s.expires) {
			delete(st.byCookie, c)
		}
	}
}
