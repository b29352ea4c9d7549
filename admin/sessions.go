package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/crmgate/crmgate/session"
)

// Sessions is what the session endpoints need of the session manager
// (*session.Manager).
type Sessions interface {
	List(ctx context.Context) ([]session.Summary, error)
	RevokeSession(ctx context.Context, hash string) error
	RevokeUser(ctx context.Context, userID string) (int, error)
	RevokeAll(ctx context.Context) (int, error)
}

// SetSessions enables the session endpoints:
//
//	GET    /sessions[?user=ID]   list live sessions (never their cookies)
//	DELETE /sessions/{id_hash}   end one session
//	POST   /sessions/revoke      {"user": "ID"} or {"all": true, "confirm": "all"}
//
// They always require the admin token: without one configured they answer
// 403, whatever address the listener is on.
func (s *Server) SetSessions(m Sessions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = m
}

func (s *Server) sessionManager(w http.ResponseWriter) Sessions {
	s.mu.Lock()
	m := s.sessions
	s.mu.Unlock()
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "browser sessions are not configured (no oidc/session section)"})
	}
	return m
}

// sessionHashRe is the form of a session's storage key as List shows it.
var sessionHashRe = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// maxRevokeBody bounds the revoke request.
const maxRevokeBody = 4 << 10

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	m := s.sessionManager(w)
	if m == nil {
		return
	}
	user := r.URL.Query().Get("user")
	list, err := m.List(r.Context())
	if err != nil {
		s.storeError(w, r, "listing sessions", err)
		return
	}
	out := list[:0:0]
	for _, x := range list {
		if user == "" || x.UserID == user {
			out = append(out, x)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out, "count": len(out)})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	m := s.sessionManager(w)
	if m == nil {
		return
	}
	hash := r.PathValue("hash")
	if !sessionHashRe.MatchString(hash) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "not a session id_hash (as GET /sessions lists it)"})
		return
	}
	if err := m.RevokeSession(r.Context(), hash); err != nil {
		s.storeError(w, r, "revoking a session", err)
		return
	}
	s.emit(r, Event{Type: "session.revoked", Target: "session:" + hash, Count: 1})
	writeJSON(w, http.StatusOK, map[string]any{"revoked": 1})
}

// RevokeRequest is the body of POST /sessions/revoke.
type RevokeRequest struct {
	User string `json:"user,omitempty"`
	All  bool   `json:"all,omitempty"`
	// Confirm must be "all" with All: ending every session is never the
	// result of a typo.
	Confirm string `json:"confirm,omitempty"`
}

func (s *Server) revokeSessions(w http.ResponseWriter, r *http.Request) {
	m := s.sessionManager(w)
	if m == nil {
		return
	}
	var req RevokeRequest
	if !decodeBody(w, r, maxRevokeBody, &req) {
		return
	}
	var (
		n   int
		err error
	)
	switch {
	case req.All && req.User != "":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "give either user or all, not both"})
		return
	case req.All && req.Confirm != "all":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `revoking every session needs "confirm": "all"`})
		return
	case req.All:
		n, err = m.RevokeAll(r.Context())
		if err == nil {
			s.emit(r, Event{Type: "session.revoked", Target: "all", Count: n}, slog.Int("count", n))
		}
	case req.User != "":
		n, err = m.RevokeUser(r.Context(), req.User)
		if err == nil {
			s.emit(r, Event{Type: "session.revoked", Target: "user:" + req.User, Count: n}, slog.Int("count", n))
		}
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `give "user" or "all"`})
		return
	}
	if err != nil {
		s.storeError(w, r, "revoking sessions", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelError, "admin: "+what+" failed", slog.Any("err", err))
	status := http.StatusInternalServerError
	if errors.Is(err, session.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]string{"error": what + " failed: the session store did not answer; see the log"})
}

// requireToken is authorize for operations that change state or reveal
// who is signed in: a token is mandatory, not only when configured.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if len(s.cfg.Token.Value()) == 0 {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "session operations need admin.token to be configured"})
		})
	}
	return s.authorize(next)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
