package crm

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// apiError is an error a handler returns to choose the response: the client
// sees Public (and Fields, for validation errors); the log gets Err.
type apiError struct {
	Status int
	Public string
	Fields map[string]string
	Err    error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return e.Public + ": " + e.Err.Error()
	}
	return e.Public
}

func (e *apiError) Unwrap() error { return e.Err }

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

// handlerFunc is a handler that returns its error instead of rendering it.
// It must return nil once it has started writing the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts fn to http.HandlerFunc and is the one place errors become
// responses. An error that is not an *apiError is a bug: it is logged and
// answered with a bare 500.
func (s *Server) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{Status: http.StatusInternalServerError, Public: "internal error", Err: err}
		}
		level := slog.LevelDebug
		if ae.Status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		s.log.LogAttrs(r.Context(), level, "crm request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", ae.Status), slog.Any("error", err))
		writeJSON(w, ae.Status, errorBody{Error: ae.Public, Fields: ae.Fields})
	}
}

// writeJSON renders v with status. The body is marshalled first so the
// response carries a Content-Length, as a buffered legacy app's would.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every value rendered here is a plain struct of strings and
		// numbers; failing to marshal one is a programming error.
		b = []byte(`{"error":"internal error"}`)
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func badRequest(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Public: msg}
}
