package auth

import (
	"html/template"
	"net/http"
	"strconv"

	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/scope"
)

// unavailableRetry is the Retry-After of the 503 page while the provider
// is unreachable.
const unavailableRetry = 30

// page is the one template of the gateway's own sign-in pages: a title, a
// sentence, the request id, and for logout a form. It loads nothing and
// runs no script. Every text is in the language of the request (i18n.For),
// which the lang attribute names.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title></head>
<body><main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Action}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">{{.Button}}</button>
</form>
{{- end}}
{{- if .Link}}
<p><a href="{{.Link}}">{{.LinkText}}</a></p>
{{- end}}
{{- if .RequestID}}
<p><small>{{.RequestIDLine}}</small></p>
{{- end}}
</main></body></html>
`))

// pageData is what a page shows. Title, Message and LinkText are i18n
// message ids, which render puts in the request's language (no Title: the
// status's reason phrase); the other fields are shown as they are.
type pageData struct {
	Title, Message, Action, CSRF, RequestID string
	// Link, when set, is a same-origin path shown as a link reading
	// LinkText.
	Link, LinkText string

	// Set by render: the language, the sign-out button and the request id
	// sentence.
	Lang, Button, RequestIDLine string
}

func render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	lang := i18n.For(r)
	d.Lang = lang
	if d.Title == "" {
		d.Title = i18n.Status(lang, status)
	} else {
		d.Title = i18n.T(lang, d.Title)
	}
	d.Message = i18n.T(lang, d.Message)
	if d.LinkText != "" {
		d.LinkText = i18n.T(lang, d.LinkText)
	}
	if d.Action != "" {
		d.Button = i18n.T(lang, "auth.page.sign_out_button")
	}
	if s := scope.From(r.Context()); s != nil {
		d.RequestID = s.ID
	}
	if d.RequestID != "" {
		d.RequestIDLine = i18n.T(lang, "auth.page.request_id", d.RequestID)
	}
	h := w.Header()
	i18n.SetHeaders(h, lang)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// No form-action: browsers apply it to the redirects after a form
	// post too, and the logout form's redirect goes to the provider.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = pageTemplate.Execute(w, d)
	}
}

// renderError renders the page of an error: the status's reason phrase
// and msg, a message id, both in the request's language.
func renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	render(w, r, status, pageData{Message: msg})
}

// renderMessage renders a page of a title and a message, both message ids.
func renderMessage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	render(w, r, status, pageData{Title: title, Message: msg})
}

// renderUnavailable is the page new logins get while the provider cannot
// be reached.
func renderUnavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", strconv.Itoa(unavailableRetry))
	render(w, r, http.StatusServiceUnavailable, pageData{
		Title:   "auth.page.unavailable_title",
		Message: "auth.page.unavailable",
	})
}

func renderLogoutForm(w http.ResponseWriter, r *http.Request, action, csrf string) {
	render(w, r, http.StatusOK, pageData{Title: "auth.page.sign_out_title", Message: "auth.page.sign_out_question", Action: action, CSRF: csrf})
}
