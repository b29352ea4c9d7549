package crm

import (
	"log/slog"
	"net/http"
)

// accessLog logs every request at debug level once it has been answered.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "crm request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.statusOrOK()),
			slog.Int64("bytes", sw.bytes),
			slog.String("user", r.Header.Get(s.cfg.IdentityHeader)),
			slog.Duration("duration", s.now().Sub(start)))
	})
}

// statusWriter records the status and body size of a response. It forwards
// Flush and, through Unwrap, everything else http.ResponseController and
// the WebSocket upgrade need (Hijack, EnableFullDuplex, deadlines).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(status int) {
	// 1xx responses other than 101 Switching Protocols are interim; the
	// final status comes later.
	if w.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher for callers that type-assert rather than
// use http.ResponseController.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOrOK is the status the client received: net/http sends 200 when a
// handler writes nothing.
func (w *statusWriter) statusOrOK() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

var _ http.Flusher = (*statusWriter)(nil)
