package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/crmgate/crmgate/proxy/framing"
	"github.com/crmgate/crmgate/scope"
)

// HTTPError is an error the gateway answers itself. The client sees Status,
// Public and the request id; Err goes to the log only.
type HTTPError struct {
	Status int
	// Public is the one sentence the client may read. Empty: the status text.
	Public string
	// Err is the internal cause, never shown to the client.
	Err error
	// Header holds extra response headers (Allow, WWW-Authenticate, ...).
	Header http.Header
	// Outcome classifies the error for logs and metrics.
	Outcome string
	// Reason labels a refusal in metrics when the status alone does not
	// say why; empty: derived from the status.
	Reason string
}

func (e *HTTPError) Error() string {
	msg := http.StatusText(e.Status)
	if e.Public != "" {
		msg += ": " + e.Public
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *HTTPError) Unwrap() error { return e.Err }

// StatusClientClosedRequest is the non-standard status logged when the
// client went away before the answer (nginx's 499).
const StatusClientClosedRequest = 499

func reject(status int, public string, err error) *HTTPError {
	return &HTTPError{Status: status, Public: public, Err: err, Outcome: "rejected"}
}

// problem is an RFC 9457 problem details document.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Status}} {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>{{.Status}} {{.Title}}</h1><p>{{.Detail}}</p>
<p>Request id: <code>{{.RequestID}}</code></p></body></html>
`))

// writeError renders e for the client: a small HTML page for browsers,
// application/problem+json for everyone else. Nothing of e.Err is shown.
func writeError(w http.ResponseWriter, r *http.Request, e *HTTPError) {
	p := problem{Type: "about:blank", Title: http.StatusText(e.Status), Status: e.Status, Detail: e.Public}
	if p.Title == "" {
		p.Title = "Error"
	}
	if s := scope.From(r.Context()); s != nil {
		p.RequestID = s.ID
		if s.Outcome == "" {
			s.Outcome = e.Outcome
		}
	}
	h := w.Header()
	// Whatever the upstream or an earlier stage set no longer applies.
	for _, k := range []string{"Content-Encoding", "Content-Length", "Content-Disposition", "Etag", "Last-Modified", "Set-Cookie"} {
		h.Del(k)
	}
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge ||
		e.Status == http.StatusRequestHeaderFieldsTooLarge || r.Header.Get("Upgrade") != "" {
		// After a malformed request the connection's state is not trusted,
		// and after a refused upgrade the framing guard has stopped
		// checking: the bytes that follow must never be read as requests.
		h.Set("Connection", "close")
	}
	status := e.Status
	if status == StatusClientClosedRequest {
		// Nobody is listening; write nothing.
		return
	}
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_ = errorPage.Execute(w, p)
		}
		return
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(p)
	}
}

// wantsHTML reports a browser navigation: Accept names text/html before any
// JSON type. API clients, which send */* or JSON, get problem+json.
func wantsHTML(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	h := strings.Index(accept, "text/html")
	if h < 0 {
		return false
	}
	j := strings.Index(accept, "json")
	return j < 0 || h < j
}

// classifyUpstreamError maps a forwarding failure to the status the client
// gets: 504 for timeouts, 499 when the client went away, 413 for an
// oversized body, 502 otherwise.
func classifyUpstreamError(r *http.Request, err error) *HTTPError {
	var mbe *http.MaxBytesError
	var fe *framing.Error
	switch {
	case errors.As(err, &fe) || framingErr(r.Context()) != nil:
		// The request body broke HTTP/1 framing midway (a smuggling
		// attempt inside chunked data): the upstream got a truncated
		// body and its answer is discarded.
		return &HTTPError{Status: http.StatusBadRequest, Public: "The request body is malformed.", Err: err, Outcome: "rejected"}
	case errors.Is(err, ErrOverride):
		return &HTTPError{Status: http.StatusBadRequest, Public: "Method overrides are not allowed here.", Err: err, Outcome: "rejected"}
	case errors.As(err, &mbe):
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Public: "The request body is too large.", Err: err, Outcome: "rejected"}
	case r.Context().Err() != nil && errors.Is(r.Context().Err(), context.Canceled):
		return &HTTPError{Status: StatusClientClosedRequest, Err: err, Outcome: "client_closed"}
	case isTimeout(err):
		return &HTTPError{Status: http.StatusGatewayTimeout, Public: "The service did not answer in time.", Err: err, Outcome: "upstream_timeout"}
	}
	return &HTTPError{Status: http.StatusBadGateway, Public: "The service is unavailable.", Err: err, Outcome: "upstream_error"}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
