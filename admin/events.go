package admin

import (
	"context"
	"log/slog"
	"net/http"
)

// Event is an operator's action through the admin API, for the audit
// trail: who (the remote address; the admin token names no one) did what.
type Event struct {
	// Type is "apikey.created", "apikey.rotated", "apikey.revoked",
	// "apikey.deleted" or "session.revoked".
	Type string
	// Remote is the operator's address.
	Remote string
	// Target is what was changed: the API key id, a session's hash, a
	// user id, or "all".
	Target string
	// Count is how many sessions a revocation ended; 0 otherwise.
	Count int
}

// SetEvents sends the admin API's security events to f as well as to the
// log. f must not block for long.
func (s *Server) SetEvents(f func(context.Context, Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = f
}

// emit logs an admin action and hands it to the events function.
func (s *Server) emit(r *http.Request, e Event, attrs ...slog.Attr) {
	e.Remote = r.RemoteAddr
	attrs = append(attrs, slog.String("event", e.Type), slog.String("target", e.Target), slog.String("remote", e.Remote))
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "admin: "+e.Type, attrs...)
	s.mu.Lock()
	f := s.events
	s.mu.Unlock()
	if f != nil {
		f(r.Context(), e)
	}
}
