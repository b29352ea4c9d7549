package auth

import (
	"html/template"
	"net/http"
	"strconv"

	"github.com/crmgate/crmgate/scope"
)

// unavailableRetry is the Retry-After of the 503 page while the provider
// is unreachable.
const unavailableRetry = 30

// page is the one template of the gateway's own sign-in pages: a title, a
// sentence, the request id, and for logout a form. It loads nothing and
// runs no script.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title></head>
<body><main>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Action}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit">Sign out</button>
</form>
{{- end}}
{{- if .Link}}
<p><a href="{{.Link}}">{{.LinkText}}</a></p>
{{- end}}
{{- if .RequestID}}
<p><small>Request id: {{.RequestID}}</small></p>
{{- end}}
</main></body></html>
`))

type pageData struct {
	Title, Message, Action, CSRF, RequestID string
	// Link, when set, is a same-origin path shown as a link reading
	// LinkText.
	Link, LinkText string
}

func render(w http.ResponseWriter, r *http.Request, status int, d pageData) {
	if s := scope.From(r.Context()); s != nil {
		d.RequestID = s.ID
	}
	h := w.Header()
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

func renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	render(w, r, status, pageData{Title: http.StatusText(status), Message: msg})
}

func renderMessage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	render(w, r, status, pageData{Title: title, Message: msg})
}

// renderUnavailable is the page new logins get while the provider cannot
// be reached.
func renderUnavailable(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", strconv.Itoa(unavailableRetry))
	render(w, r, http.StatusServiceUnavailable, pageData{
		Title:   "Sign-in temporarily unavailable",
		Message: "The identity provider cannot be reached right now, so new sign-ins are not possible. If you are already signed in, you can keep working. Try again in a minute.",
	})
}

func renderLogoutForm(w http.ResponseWriter, r *http.Request, action, csrf string) {
	render(w, r, http.StatusOK, pageData{Title: "Sign out", Message: "Sign out of this application and your organisation's sign-in?", Action: action, CSRF: csrf})
}
