package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/proxy/framing"
	"github.com/crmgate/crmgate/scope"
)

// HTTPError is an error the gateway answers itself. The client sees Status,
// Public and the request id; Err goes to the log only.
type HTTPError struct {
	Status int
	// Public is the one sentence the client may read, as an i18n message
	// id ("proxy.error.forbidden") shown in the client's language; text
	// that is no message id is shown as it is. Empty: the status text.
	Public string
	// Args are Public's format arguments, if it takes any.
	Args []any
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
		msg += ": " + e.PublicText(i18n.English)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *HTTPError) Unwrap() error { return e.Err }

// PublicText is Public in lang (an i18n language), "" when there is none.
func (e *HTTPError) PublicText(lang string) string {
	if e.Public == "" {
		return ""
	}
	return i18n.T(lang, e.Public, e.Args...)
}

// StatusClientClosedRequest is the non-standard status logged when the
// client went away before the answer (nginx's 499).
const StatusClientClosedRequest = 499

func reject(status int, public string, err error) *HTTPError {
	return &HTTPError{Status: status, Public: public, Err: err, Outcome: "rejected"}
}

// problem is an RFC 9457 problem details document. Its detail is in the
// client's language (Content-Language says which); its title stays the
// English reason phrase. RFC 9457 §4.2.1 lets the title of an
// "about:blank" problem be localized, but it is the field scripts match
// on, and the HTML page, which people read, has the translated one.
type problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Status}} {{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>{{.Status}} {{.Title}}</h1><p>{{.Detail}}</p>
{{- if .Retry}}
<p>{{.Retry}}</p>
{{- end}}
<p>{{.RequestID}}</p></body></html>
`))

// errorPageData is what the error page shows, all in Lang.
type errorPageData struct {
	Lang          string
	Status        int
	Title, Detail string
	// Retry says when to try again, from a Retry-After in seconds.
	Retry string
	// RequestID is the sentence naming the request id, which it shows as
	// code.
	RequestID template.HTML
}

// requestIDLine renders the request id sentence of lang with the id as
// code; both the sentence and the id are escaped.
func requestIDLine(lang, id string) template.HTML {
	format := template.HTMLEscapeString(i18n.T(lang, "proxy.page.request_id"))
	return template.HTML(fmt.Sprintf(format, "<code>"+template.HTMLEscapeString(id)+"</code>"))
}

// writeError renders e for the client: a small HTML page for browsers,
// application/problem+json for everyone else. Nothing of e.Err is shown.
//
// The page and the problem's detail are in the language Accept-Language
// asks for (i18n.For), which Content-Language names.
func writeError(w http.ResponseWriter, r *http.Request, e *HTTPError) {
	lang := i18n.For(r)
	p := problem{Type: "about:blank", Title: http.StatusText(e.Status), Status: e.Status, Detail: e.PublicText(lang)}
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
	i18n.SetHeaders(h, lang)
	if wantsHTML(r) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			d := errorPageData{Lang: lang, Status: status, Title: i18n.Status(lang, status), Detail: p.Detail,
				RequestID: requestIDLine(lang, p.RequestID)}
			if d.Title == "" {
				d.Title = i18n.T(lang, "proxy.error.title")
			}
			if secs, err := strconv.Atoi(h.Get("Retry-After")); err == nil && secs > 0 {
				d.Retry = i18n.T(lang, "proxy.page.retry_after", secs)
			}
			_ = errorPage.Execute(w, d)
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
		return &HTTPError{Status: http.StatusBadRequest, Public: "proxy.error.body_malformed", Err: err, Outcome: "rejected"}
	case errors.Is(err, ErrOverride):
		return &HTTPError{Status: http.StatusBadRequest, Public: "proxy.error.override_refused", Err: err, Outcome: "rejected"}
	case errors.As(err, &mbe):
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Public: "proxy.error.body_too_large", Err: err, Outcome: "rejected"}
	case r.Context().Err() != nil && errors.Is(r.Context().Err(), context.Canceled):
		return &HTTPError{Status: StatusClientClosedRequest, Err: err, Outcome: "client_closed"}
	case isTimeout(err):
		return &HTTPError{Status: http.StatusGatewayTimeout, Public: "proxy.error.upstream_timeout", Err: err, Outcome: "upstream_timeout"}
	}
	return &HTTPError{Status: http.StatusBadGateway, Public: "proxy.error.upstream_unavailable", Err: err, Outcome: "upstream_error"}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
