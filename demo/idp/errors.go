package idp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/crmgate/crmgate/i18n"
)

// httpError is what a page handler returns: the browser sees Public, an
// i18n message id shown in its language; the log gets Err.
type httpError struct {
	Status int
	Public string
	Err    error
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%d %s: %v", e.Status, e.Public, e.Err)
}

func (e *httpError) Unwrap() error { return e.Err }

// handlerFunc is a page handler that returns its error for handle to render.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// handle renders the error a page handler returns, in one place.
func (p *Provider) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{Status: http.StatusInternalServerError, Public: "idp.error.internal", Err: err}
		}
		level := slog.LevelInfo
		if he.Status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		p.log.Log(r.Context(), level, "request failed", "path", r.URL.Path, "status", he.Status, "error", he.Err)
		p.renderPage(w, r, he.Status, "error", pageData{Title: "idp.page.problem_title", Error: i18n.T(i18n.For(r), he.Public)}, nil)
	})
}
