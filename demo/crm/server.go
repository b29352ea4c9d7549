package crm

import (
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Server is the sample CRM. Create it with [New]; the zero Server is not
// usable. It is safe for concurrent use by many requests.
type Server struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	contacts *store
	// Deals, invoices and users are generated once and never change, so
	// they are read without a lock.
	deals    []Deal
	invoices []Invoice
	users    []AdminUser

	home    *template.Template
	mux     *http.ServeMux
	handler http.Handler
}

// New builds a Server from cfg, with cfg's zero fields defaulted (see
// [Config]), its demo data generated from cfg.Seed and its routes compiled.
// It starts nothing: serve [Server.Handler] to run it. A nil log discards
// logs; a nil now means [time.Now]. The clock stamps created_at and
// updated_at on writes and times the request log.
func New(cfg Config, log *slog.Logger, now func() time.Time) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: log, now: now, home: homeTemplate()}

	gen := newGenerator(cfg.Seed)
	contacts := make([]Contact, cfg.Contacts)
	for i := range contacts {
		contacts[i] = gen.contact(i)
	}
	s.contacts = newStore(contacts)
	s.deals = make([]Deal, cfg.Contacts*3/2)
	for i := range s.deals {
		s.deals[i] = gen.deal(i, contacts)
	}
	s.invoices = make([]Invoice, cfg.Contacts)
	for i := range s.invoices {
		s.invoices[i] = gen.invoice(i, contacts)
	}
	s.users = gen.adminUsers()

	s.mux = s.routes()
	s.handler = s.accessLog(http.HandlerFunc(s.serve))
	return s
}

// Handler returns the CRM's HTTP handler. Every call returns the same
// handler, which shares the Server's data. It serves:
//
//	GET  /                          HTML start page: signed-in user, first 20 contacts
//	GET  /healthz                   "ok"
//	GET  /api/contacts              list (?page=, ?per_page= up to 500, ?q=)
//	POST /api/contacts              create (JSON, 1 MiB max) -> 201 + Location
//	GET, PUT, DELETE /api/contacts/{id}
//	GET  /api/deals, /api/invoices, /api/admin/users   lists, paginated alike
//	GET  /api/export/contacts       streamed export (?count=, ?bytes=, ?format=csv)
//	ANY  /api/whoami[/...]          echo of the request as received
//	POST /api/echo                  body streamed back, X-Received-Bytes trailer
//	GET  /api/slow?ms=N             answers after N ms (at most 60 s)
//	GET  /api/ws                    WebSocket echo, greeting {"hello": user}
//
// Errors are JSON {"error": ...}; unknown paths are 404 and known paths
// with the wrong method 405 with an Allow header.
func (s *Server) Handler() http.Handler { return s.handler }

// routes compiles the route table. Errors returned by handlers are rendered
// in one place, [Server.handle].
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handle(s.homePage))
	mux.HandleFunc("GET /healthz", s.healthz)

	mux.HandleFunc("GET /api/contacts", s.handle(s.listContacts))
	mux.HandleFunc("POST /api/contacts", s.handle(s.createContact))
	mux.HandleFunc("GET /api/contacts/{id}", s.handle(s.getContact))
	mux.HandleFunc("PUT /api/contacts/{id}", s.handle(s.updateContact))
	mux.HandleFunc("DELETE /api/contacts/{id}", s.handle(s.deleteContact))

	mux.HandleFunc("GET /api/deals", s.handle(s.listDeals))
	mux.HandleFunc("GET /api/invoices", s.handle(s.listInvoices))
	mux.HandleFunc("GET /api/admin/users", s.handle(s.listAdminUsers))

	mux.HandleFunc("GET /api/export/contacts", s.handle(s.exportContacts))

	mux.HandleFunc("POST /api/echo", s.handle(s.echo))
	mux.HandleFunc("GET /api/slow", s.handle(s.slow))
	mux.HandleFunc("GET /api/ws", s.handle(s.wsEcho))
	// /api/whoami is dispatched in serve, ahead of the mux.
	return mux
}

// serve dispatches one request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Everything under /api/whoami goes straight to the echo, whatever the
	// method and however unclean the path: the mux would otherwise redirect
	// "/api/whoami/../x" to its cleaned form, and the end-to-end tests need
	// to see exactly what the gateway forwarded.
	if p := r.URL.Path; p == "/api/whoami" || strings.HasPrefix(p, "/api/whoami/") {
		s.handle(s.whoami)(w, r)
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.unrouted(w, r, h)
		return
	}
	// ServeHTTP matches again, but only it fills r.PathValue.
	s.mux.ServeHTTP(w, r)
}

// unrouted answers a request no pattern matched. The mux's own answers are
// plain text; a JSON API answers in JSON, so they are rewritten, keeping the
// Allow header of a 405.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	var cw captureWriter
	h.ServeHTTP(&cw, r)
	switch cw.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", cw.Header().Get("Allow"))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	case http.StatusNotFound:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
	default:
		// A redirect to a cleaned path; pass it on as the mux wrote it.
		for k, v := range cw.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(cw.status)
		_, _ = w.Write(cw.body)
	}
}

// captureWriter records the mux's small built-in responses so unrouted can
// rewrite them.
type captureWriter struct {
	header http.Header
	status int
	body   []byte
}

func (c *captureWriter) Header() http.Header {
	if c.header == nil {
		c.header = make(http.Header)
	}
	return c.header
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	c.body = append(c.body, p...)
	return len(p), nil
}

// user returns the signed-in user the gateway asserted, or "anonymous":
// like the legacy systems it stands in for, the CRM answers either way.
func (s *Server) user(r *http.Request) string {
	if u := r.Header.Get(s.cfg.IdentityHeader); u != "" {
		return u
	}
	return "anonymous"
}
