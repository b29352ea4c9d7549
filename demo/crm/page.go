package crm

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
)

// homeRows is how many contacts the home page lists.
const homeRows = 20

// homeHTML is the CRM's start page: self-contained (inline CSS, no scripts,
// no external assets) so the demo works offline and the gateway's
// Content-Security-Policy has nothing to allow. It shows every field the
// API shows, so redaction by the gateway is visible in the browser too.
const homeHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme CRM</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f4f5f7}
header{background:#2d4a7a;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:20px;margin:0}
main{padding:16px 24px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d8dce3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#e9edf3}
tr:nth-child(even) td{background:#fafbfc}
.mono{font-family:ui-monospace,monospace}
footer{padding:8px 24px;color:#777;font-size:12px}
</style>
</head>
<body>
<header><h1>Acme CRM</h1><div>Signed in as <strong>{{.User}}</strong>{{if .Roles}} ({{.Roles}}){{end}}</div></header>
<main>
<h2>Contacts</h2>
<p>Showing {{len .Contacts}} of {{.Total}} contacts. API: <a href="/api/contacts">/api/contacts</a></p>
<table>
<thead><tr><th>ID</th><th>Name</th><th>Email</th><th>Phone</th><th>Company</th><th>Owner</th><th>SSN</th><th>Credit card</th><th>Notes</th><th>Created</th><th>Updated</th></tr></thead>
<tbody>
{{range .Contacts}}<tr><td>{{.ID}}</td><td>{{.Name}}</td><td>{{.Email}}</td><td class="mono">{{.Phone}}</td><td>{{.Company}}</td><td>{{.Owner}}</td><td class="mono">{{.SSN}}</td><td class="mono">{{.CreditCard}}</td><td>{{.Notes}}</td><td>{{.CreatedAt.Format "2006-01-02"}}</td><td>{{.UpdatedAt.Format "2006-01-02"}}</td></tr>
{{else}}<tr><td colspan="11">No contacts.</td></tr>
{{end}}</tbody>
</table>
</main>
<footer>Acme CRM 4.2 &middot; legacy edition</footer>
</body>
</html>
`

// homeTemplate parses homeHTML; a failure is a bug in the constant above.
func homeTemplate() *template.Template {
	return template.Must(template.New("home").Parse(homeHTML))
}

// homePage renders the start page. It is buffered so a template error
// still yields a proper 500 instead of half a page.
func (s *Server) homePage(w http.ResponseWriter, r *http.Request) error {
	contacts, total := s.contacts.list("", 0, homeRows)
	data := struct {
		User     string
		Roles    string
		Contacts []Contact
		Total    int
	}{s.user(r), r.Header.Get(s.cfg.RolesHeader), contacts, total}
	var buf bytes.Buffer
	if err := s.home.Execute(&buf, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	return nil
}
