package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/demo/idp"
	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/clocktest"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// fakeClock is the RP's clock in tests. It starts at the real time: the
// provider signs with the wall clock, and the tests move the RP's clock
// forward to reach token expiry.
type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New(time.Now()) }

const (
	testClientID = "gateway"
	// testClientSecret is long and random-looking, as secret.Check wants.
	testClientSecret = "h7Qe2vKp9LxW3rTz8NbY5cJd1FgS6mUa4RkVo0XiPwEtHqBn"
)

// testUser is an account of the dev IdP.
type testUser struct {
	name, password, totpSecret string
	roles                      []string
}

var testUsers = []testUser{
	{name: "alice", password: "alice-password", roles: []string{"sales", "support"}},
	{name: "bob", password: "bob-password", roles: []string{"finance"}},
	{name: "mallory", password: "mallory-password", roles: []string{"sales"}},
}

// envOpts adjusts an env.
type envOpts struct {
	cfg func(*Config)
	// levels replaces the default step-up levels.
	levels *stepup.Config
	idp    func(*idp.Config)
	// stub serves a scripted provider (stubOP) instead of the dev IdP.
	stub bool
	// stubNoIss keeps the stub from advertising RFC 9207 support.
	stubNoIss bool
	// idpDown makes the provider answer 503 from the start.
	idpDown bool
}

// env is the dev IdP (or the stub provider) served over TLS on 127.0.0.1,
// and a gateway stand-in served over TLS that mounts the RP's handler and
// an application that calls Identify and Challenge.
type env struct {
	t       *testing.T
	clock   *fakeClock
	issuer  string
	idp     *idp.Provider
	stub    *stubOP
	idpSrv  *httptest.Server
	idpDown atomic.Bool
	users   map[string]testUser

	rp       *RP
	cfg      Config
	sessions *session.Manager
	rpSrv    *httptest.Server
	rpURL    string
	roots    *x509.CertPool // trusts both servers, for browsers
	events   *eventLog
	logs     *logCapture

	mu           sync.Mutex
	logoutTokens []string // logout_token values that reached the RP
	// actions counts what /sensitive carried out.
	actions atomic.Int32
	// fingerprint, when set, is the client fingerprint the gateway
	// stand-in reports for its sign-in endpoints, as the proxy does.
	fingerprint atomic.Pointer[map[string]string]
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), events: &eventLog{}, logs: &logCapture{}, users: map[string]testUser{}}
	e.idpDown.Store(o.idpDown)
	idpLn := listen(t)
	rpLn := listen(t)
	e.issuer = "https://" + idpLn.Addr().String()
	e.rpURL = "https://" + rpLn.Addr().String()

	// The gateway stand-in starts first, so that the provider can be
	// given a client that trusts it; its handler is installed last.
	var app atomic.Pointer[http.Handler]
	e.rpSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := app.Load()
		if h == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	}))
	e.rpSrv.Listener.Close()
	e.rpSrv.Listener = rpLn
	e.rpSrv.StartTLS()
	t.Cleanup(e.rpSrv.Close)

	var opHandler http.Handler
	if o.stub {
		e.stub = newStubOP(t, e.issuer, e.rpURL+DefaultRedirectPath, e.clock.Now)
		e.stub.advertiseIss = !o.stubNoIss
		opHandler = e.stub.handler()
	} else {
		cfg := idp.Config{
			Issuer:     e.issuer,
			IDTokenTTL: time.Hour,
			Clients: []idp.Client{{
				ID: testClientID, Secret: testClientSecret,
				RedirectURIs:           []string{e.rpURL + DefaultRedirectPath},
				PostLogoutRedirectURIs: []string{e.rpURL + "/signed-out"},
				BackChannelLogoutURI:   e.rpURL + DefaultBackChannelLogoutPath,
			}},
			BackChannelTransport: e.rpSrv.Client().Transport,
		}
		for _, u := range testUsers {
			hash, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			key, err := totp.Generate(totp.GenerateOpts{Issuer: "test", AccountName: u.name})
			if err != nil {
				t.Fatal(err)
			}
			u.totpSecret = key.Secret()
			e.users[u.name] = u
			cfg.Users = append(cfg.Users, idp.User{Username: u.name, PasswordHash: string(hash), Email: u.name + "@example.com",
				Roles: u.roles, TOTPSecret: u.totpSecret})
		}
		if o.idp != nil {
			o.idp(&cfg)
		}
		p, err := idp.New(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})), nil)
		if err != nil {
			t.Fatal(err)
		}
		e.idp = p
		opHandler = p.Handler()
	}
	e.idpSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.idpDown.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		opHandler.ServeHTTP(w, r)
	}))
	e.idpSrv.Listener.Close()
	e.idpSrv.Listener = idpLn
	e.idpSrv.StartTLS()
	t.Cleanup(e.idpSrv.Close)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(e.idpSrv.Certificate())
	e.roots.AddCert(e.rpSrv.Certificate())

	store := session.NewMemoryStore(session.MemoryOptions{Now: e.clock.Now})
	scfg := session.Config{Keys: []secret.Ref{secret.FromValue([]byte("session key for the auth tests, 32+ bytes long"))}}
	scfg.Defaults()
	sm, err := session.New(scfg, store, nil, e.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	e.sessions = sm

	e.cfg = Config{
		Issuer:                e.issuer,
		ClientID:              testClientID,
		ClientSecret:          secret.FromValue([]byte(testClientSecret)),
		ExternalURL:           e.rpURL,
		PostLogoutRedirectURL: e.rpURL + "/signed-out",
	}
	e.cfg.Defaults()
	if o.cfg != nil {
		o.cfg(&e.cfg)
	}
	opts := []Option{WithEventSink(e.events)}
	if o.levels != nil {
		opts = append(opts, WithStepUpLevels(*o.levels))
	}
	e.rp = New(e.cfg, sm, e.idpSrv.Client(), slog.New(e.logs), e.clock.Now, opts...)
	e.rp.retryMin, e.rp.retryMax = 20*time.Millisecond, 100*time.Millisecond

	h := e.app()
	app.Store(&h)

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := e.rp.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return e
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// whoami is what the test application answers for an identified request.
type whoami struct {
	Path     string    `json:"path"`
	Subject  string    `json:"subject"`
	Email    string    `json:"email"`
	Roles    []string  `json:"roles"`
	ACR      string    `json:"acr"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
	SID      string    `json:"sid"`
	Hash     string    `json:"hash"`
	CSRF     string    `json:"csrf"`
	TokenSum string    `json:"token_sum"`
}

// app is the gateway stand-in: the RP's paths, and an application that
// identifies every other request or challenges it.
func (e *env) app() http.Handler {
	mux := http.NewServeMux()
	rph := e.rp.Handler()
	mux.Handle("/.crmgate/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == DefaultBackChannelLogoutPath && r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			if v, err := url.ParseQuery(string(body)); err == nil {
				e.mu.Lock()
				e.logoutTokens = append(e.logoutTokens, v.Get("logout_token"))
				e.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if fp := e.fingerprint.Load(); fp != nil {
			r = r.WithContext(scope.With(r.Context(), &scope.Scope{Fingerprint: *fp}))
		}
		rph.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /signed-out", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "signed out") })
	mux.HandleFunc("GET /stepup", func(w http.ResponseWriter, r *http.Request) {
		e.rp.Login(w, r, "/after-stepup", WithACRValues("mfa"))
	})
	mux.HandleFunc("GET /fresh", func(w http.ResponseWriter, r *http.Request) {
		e.rp.Login(w, r, "/after-fresh", WithMaxAge(time.Minute), WithPromptLogin())
	})
	mux.HandleFunc("GET /login-to", func(w http.ResponseWriter, r *http.Request) {
		e.rp.Login(w, r, r.URL.Query().Get("return"))
	})
	// /sensitive needs mfa within 5 minutes (/sensitive?acr=L: level L),
	// as a policy's step-up decision would; its actions are counted.
	mux.HandleFunc("/sensitive", func(w http.ResponseWriter, r *http.Request) {
		sub, _, err := e.rp.Identify(r)
		if err != nil {
			e.rp.Challenge(w, r)
			return
		}
		req := stepup.Required{ACR: "mfa", MaxAge: 5 * time.Minute}
		if l := r.URL.Query().Get("acr"); l != "" {
			req.ACR = l
		}
		a := stepup.Authentication{ACR: sub.ACR, AMR: sub.AMR, AuthTime: sub.AuthTime}
		if ok, _ := e.rp.levels.Satisfies(a, req, e.clock.Now()); !ok {
			e.rp.StepUp(w, r, sub.ID, req)
			return
		}
		e.actions.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(whoami{Path: r.URL.RequestURI(), Subject: sub.ID, ACR: sub.ACR, AMR: sub.AMR, AuthTime: sub.AuthTime})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sub, rec, err := e.rp.Identify(r)
		if err != nil {
			e.rp.Challenge(w, r)
			return
		}
		// Changes when the tokens are renewed.
		sum := sha256.Sum256([]byte(rec.Tokens.IDToken + "\x00" + rec.Tokens.RefreshToken + "\x00" + rec.Tokens.Expiry.String()))
		sid, _ := rec.Claims["sid"].(string)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(whoami{
			Path: r.URL.RequestURI(), Subject: sub.ID, Email: sub.Email, Roles: sub.Roles, ACR: sub.ACR, AMR: sub.AMR,
			AuthTime: sub.AuthTime, SID: sid, Hash: rec.Hash(), CSRF: e.rp.CSRFToken(rec), TokenSum: hex.EncodeToString(sum[:8]),
		})
	})
	return mux
}

func (e *env) receivedLogoutTokens() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.logoutTokens)
}

// logCapture is a slog.Handler that keeps the RP's log lines (message and
// attributes, as text), so that a test can tell which check refused.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCapture) WithGroup(string) slog.Handler            { return l }

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		sb.WriteString(" " + a.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, sb.String())
	return nil
}

// lastWith returns the last line whose message is msg.
func (l *logCapture) lastWith(msg string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(l.lines[i], msg+" ") || l.lines[i] == msg {
			return l.lines[i]
		}
	}
	return ""
}

// eventLog is an EventSink that keeps what it is sent.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) Emit(_ context.Context, ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// reasons lists the reasons of the events of type typ, in order.
func (l *eventLog) reasons(typ string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		if ev.Type == typ {
			out = append(out, ev.Reason)
		}
	}
	return out
}

func (l *eventLog) last(typ string) (Event, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if l.events[i].Type == typ {
			return l.events[i], true
		}
	}
	return Event{}, false
}

// browser is a browser on the gateway stand-in and the provider, bound to
// the test it reports to.
type browser struct {
	*browsertest.Browser
	t *testing.T
	e *env
}

func (e *env) browser(t *testing.T) *browser {
	t.Helper()
	return &browser{Browser: browsertest.New(t, e.roots), t: t, e: e}
}

// stopAtCallback makes the browser stop before the RP's callback, so a
// test can read or alter the authorization response.
func (b *browser) stopAtCallback() {
	b.Stop = func(r *http.Request) bool { return r.URL.Path == DefaultRedirectPath }
}

// stopAtProvider makes the browser stop before it reaches the provider.
func (b *browser) stopAtProvider() {
	b.Stop = func(r *http.Request) bool { return "https://"+r.URL.Host == b.e.issuer }
}

// cookie returns the jar's cookie named name for the RP, or nil.
func (b *browser) cookie(name string) *http.Cookie {
	return b.Cookie(b.e.rpURL, name)
}

// loginCookies returns the jar's pre-login cookies.
func (b *browser) loginCookies() []*http.Cookie {
	var out []*http.Cookie
	for _, c := range b.Cookies(b.e.rpURL) {
		if strings.HasPrefix(c.Name, b.e.cfg.LoginCookieName+"-") {
			out = append(out, c)
		}
	}
	return out
}

// setCookie puts a cookie for the RP into the jar, as an attacker with a
// foothold in the browser (or a test) would.
func (b *browser) setCookie(name, value string) {
	b.SetCookie(b.e.rpURL, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true})
}

// redirectTo returns where p redirects to, and fails the test when p is
// not a redirect.
func redirectTo(t *testing.T, p browsertest.Page) *url.URL {
	t.Helper()
	loc := p.Location()
	if p.Status/100 != 3 || loc == nil {
		t.Fatalf("%d at %s, want a redirect:\n%s", p.Status, p.URL, p.Body)
	}
	return loc
}

// atLogin reports whether p is the dev IdP's login form.
func (e *env) atLogin(p browsertest.Page) bool {
	return "https://"+p.URL.Host == e.issuer && p.URL.Path == "/login" && p.Status == http.StatusOK
}

// signIn completes the dev IdP's forms from p: the password form when p is
// it, then the TOTP form when the provider asks for a second factor.
func (e *env) signIn(b *browser, p browsertest.Page, user string) browsertest.Page {
	b.t.Helper()
	u := e.users[user]
	atIdP := "https://"+p.URL.Host == e.issuer
	switch {
	case atIdP && p.URL.Path == "/login" && p.Status == http.StatusOK:
		p = b.Submit(p, map[string]string{"username": user, "password": u.password})
	case atIdP && p.URL.Path == "/login/otp":
	default:
		b.t.Fatalf("expected the provider's login form, got %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	if "https://"+p.URL.Host == e.issuer && p.URL.Path == "/login/otp" {
		p = b.Submit(p, map[string]string{"otp": browsertest.TOTP(b.t, u.totpSecret)})
	}
	return p
}

// login runs a whole login from path on the RP as user and returns the
// page the browser lands on.
func (e *env) login(b *browser, path, user string) browsertest.Page {
	b.t.Helper()
	return e.signIn(b, b.Get(e.rpURL+path), user)
}

// who decodes the test application's answer.
func who(t *testing.T, p browsertest.Page) whoami {
	t.Helper()
	if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("not identified: %d at %s:\n%s", p.Status, p.URL, p.Body)
	}
	var w whoami
	if err := json.Unmarshal([]byte(p.Body), &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// identified reports whether the browser's session cookie is a session.
func (e *env) identified(b *browser) bool {
	req := httptest.NewRequest(http.MethodGet, e.rpURL+"/", nil)
	if c := b.cookie(e.sessions.CookieName()); c != nil {
		req.AddCookie(c)
	}
	_, _, err := e.rp.Identify(req)
	return err == nil
}

// record loads the browser's session record.
func (e *env) record(b *browser) *session.Record {
	b.t.Helper()
	req := httptest.NewRequest(http.MethodGet, e.rpURL+"/", nil)
	c := b.cookie(e.sessions.CookieName())
	if c == nil {
		b.t.Fatal("no session cookie")
	}
	req.AddCookie(c)
	rec, err := e.sessions.Load(req)
	if err != nil {
		b.t.Fatalf("Load: %v", err)
	}
	return rec
}
