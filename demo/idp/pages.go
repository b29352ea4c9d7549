package idp

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strings"

	"github.com/crmgate/crmgate/i18n"
)

// pageData is what the page templates show. Title and Message are i18n
// message ids; Error is text already in the page's language.
type pageData struct {
	Title         string
	Nonce         string
	Client        string
	AuthRequestID string
	CSRF          string
	Username      string
	Error         string
	Message       string

	// Set by renderPage: the language, its messages for the templates'
	// labels, and the sentences that show a name in bold.
	Lang    string
	L       map[string]string
	Lead    template.HTML
	OTPLead template.HTML
}

// bold formats message id of lang with arg in bold; the message and arg
// are escaped.
func bold(lang, id, arg string) template.HTML {
	format := template.HTMLEscapeString(i18n.T(lang, id))
	return template.HTML(fmt.Sprintf(format, "<b>"+template.HTMLEscapeString(arg)+"</b>"))
}

// pages are plain HTML forms with no external asset; the one inline style
// sheet is allowed by a per-response CSP nonce.
var pages = template.Must(template.New("pages").Parse(`
{{define "head"}}<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} · {{index .L "idp.page.product"}}</title>
<style nonce="{{.Nonce}}">
body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#222}
.warn{background:#fff4d6;border:1px solid #e0b000;padding:.5rem;font-size:.85rem}
.err{background:#fde2e2;border:1px solid #c00;padding:.5rem}
label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.5rem 1.2rem}
</style></head><body>
<p class="warn">{{index .L "idp.page.warning"}}</p>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{end}}
{{define "foot"}}</body></html>
{{end}}
{{define "login"}}{{template "head" .}}
<p>{{.Lead}}</p>
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="username">{{index .L "idp.page.username"}}</label>
<input id="username" name="username" autocomplete="username" value="{{.Username}}" required autofocus>
<label for="password">{{index .L "idp.page.password"}}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">{{index .L "idp.page.sign_in_button"}}</button>
</form>
{{template "foot" .}}{{end}}
{{define "otp"}}{{template "head" .}}
<p>{{.OTPLead}}</p>
<form method="post" action="/login/otp">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="otp">{{index .L "idp.page.code"}}</label>
<input id="otp" name="otp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit">{{index .L "idp.page.verify_button"}}</button>
</form>
{{template "foot" .}}{{end}}
{{define "error"}}{{template "head" .}}{{template "foot" .}}{{end}}
{{define "message"}}{{template "head" .}}<p>{{.Message}}</p>{{template "foot" .}}{{end}}
`))

// renderPage writes a page with the headers every HTML answer carries, in
// the language r asks for (i18n.For). formTargets are the origins a form on
// the page may end up at: the form is posted to the provider, which
// redirects to the client, and browsers apply form-action to every hop of
// that redirect chain.
func (p *Provider) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, d pageData, formTargets []string) {
	d.Nonce = pageNonce()
	d.Lang = i18n.For(r)
	d.L = i18n.Messages(d.Lang)
	d.Title, d.Message = i18n.T(d.Lang, d.Title), i18n.T(d.Lang, d.Message)
	d.Lead = bold(d.Lang, "idp.page.lead", d.Client)
	d.OTPLead = bold(d.Lang, "idp.page.otp_lead", d.Username)
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		p.log.Error("render page", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	i18n.SetHeaders(h, d.Lang)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+d.Nonce+"'; "+
		"form-action "+strings.Join(append([]string{"'self'"}, formTargets...), " ")+"; "+
		"frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func pageNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}
