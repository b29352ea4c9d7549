package admin

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/crmgate/crmgate/i18n"
)

// The dashboard is one page with its style sheet and script inline, each
// allowed by a nonce that is new on every response: nothing is loaded
// from anywhere else, so the Content-Security-Policy can forbid it all.
var (
	//go:embed dashboard/page.html.tmpl
	dashboardPage string
	//go:embed dashboard/dashboard.css
	dashboardCSS string
	//go:embed dashboard/dashboard.js
	dashboardJS string

	dashboardTmpl = template.Must(template.New("dashboard").Parse(dashboardPage))
)

// dashboardCSP is the page's Content-Security-Policy; %s is the nonce.
// connect-src 'self' lets the script fetch the JSON endpoints of this
// listener and nothing else; form-action 'none' because the token form is
// handled by script and never submitted.
const dashboardCSP = "default-src 'none'; script-src 'nonce-%[1]s'; style-src 'nonce-%[1]s'; " +
	"connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// dashboardPoll is how often the page asks for fresh data, and
// dashboardWindow how much history its charts keep.
const (
	dashboardPoll   = 5 * time.Second
	dashboardWindow = 10 * time.Minute
)

// dashboardRoutes adds the dashboard: the page, which anyone who reaches
// the listener may load (it holds no data, only a token prompt), and its
// JSON endpoints, which need the token like /metrics. The sessions panel
// uses GET /sessions and DELETE /sessions/{hash}.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /dashboard", s.dashboard)
	mux.Handle("GET /dashboard/api/summary", s.authorize(http.HandlerFunc(s.dashboardSummary)))
	// Audit events name people and addresses, as the session list does:
	// a token is mandatory.
	mux.Handle("GET /dashboard/api/events", s.requireToken(http.HandlerFunc(s.dashboardEvents)))
}

// dashboardCharts are the series of SummarySeries the page plots, by
// their JSON names; each has a message dashboard.chart.<name>.
var dashboardCharts = []string{"requests", "denials", "step_ups", "rate_limited", "hijacks"}

// pageData is what the page template needs.
type pageData struct {
	Lang  string
	Nonce string
	// T holds the page's texts in Lang, by message id.
	T map[string]string
	// ChartsHeading is formatted with the chart window.
	ChartsHeading string
	// Charts are the series the page plots, in order (see SummarySeries).
	Charts []string
	CSS    template.CSS
	JS     template.JS
	// Config is handed to the script as JSON in a data block.
	Config dashboardConfig
}

// dashboardConfig is what the script learns from the server.
type dashboardConfig struct {
	Lang          string            `json:"lang"`
	TokenRequired bool              `json:"token_required"`
	PollSeconds   int               `json:"poll_seconds"`
	WindowMinutes int               `json:"window_minutes"`
	Messages      map[string]string `json:"messages"`
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	// 130 random bits (CSP Level 3 asks for at least 128), new on every
	// response.
	nonce := rand.Text()
	lang := i18n.For(r)
	msgs := dashboardMessages(lang)
	data := pageData{
		Lang: lang, Nonce: nonce, T: msgs,
		ChartsHeading: i18n.T(lang, "dashboard.charts.heading", int(dashboardWindow/time.Minute)),
		Charts:        dashboardCharts,
		CSS:           template.CSS(dashboardCSS), JS: template.JS(dashboardJS),
		Config: dashboardConfig{
			Lang:          lang,
			TokenRequired: len(s.cfg.Token.Value()) > 0,
			PollSeconds:   int(dashboardPoll / time.Second),
			WindowMinutes: int(dashboardWindow / time.Minute),
			Messages:      msgs,
		},
	}
	var buf bytes.Buffer
	if err := dashboardTmpl.Execute(&buf, data); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "admin: rendering the dashboard", slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", strings.ReplaceAll(dashboardCSP, "%[1]s", nonce))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Vary", "Accept-Language")
	_, _ = w.Write(buf.Bytes())
}

// dashboardMessages returns the dashboard's texts in lang, English where
// a translation is missing.
func dashboardMessages(lang string) map[string]string {
	out := map[string]string{}
	for id, text := range i18n.Messages(i18n.English) {
		if strings.HasPrefix(id, "dashboard.") {
			out[id] = text
		}
	}
	for id, text := range i18n.Messages(lang) {
		if strings.HasPrefix(id, "dashboard.") {
			out[id] = text
		}
	}
	return out
}
