package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/auth"
	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// fakeAuth is an Authenticator with a fixed answer: the identify stage's
// seam. The relying party itself is tested against a real provider in
// package auth and end to end.
type fakeAuth struct {
	sub        *scope.Subject
	err        error
	challenged atomic.Int32
	handled    atomic.Int32
	steppedUp  atomic.Int32
	// bound is the fingerprint of the session Identify returns.
	bound   map[string]string
	revoked []auth.Revocation
	// signInFingerprint is the fingerprint the endpoints saw last.
	signInFingerprint map[string]string
}

func (f *fakeAuth) Identify(*http.Request) (*scope.Subject, *session.Record, error) {
	if f.err != nil {
		return nil, nil, f.err
	}
	if f.sub == nil {
		return nil, nil, session.ErrNoSession
	}
	rec := &session.Record{UserID: f.sub.ID, Created: time.Unix(1700000000, 0), Fingerprint: f.bound}
	return f.sub, rec, nil
}

func (f *fakeAuth) Challenge(w http.ResponseWriter, r *http.Request) {
	f.challenged.Add(1)
	http.Redirect(w, r, "https://idp.example.com/authorize", http.StatusFound)
}

func (f *fakeAuth) StepUp(w http.ResponseWriter, r *http.Request, subject string, req stepup.Required) {
	f.steppedUp.Add(1)
	http.Redirect(w, r, "https://idp.example.com/authorize?acr_values="+req.ACR+"&prompt=login", http.StatusSeeOther)
}

func (f *fakeAuth) Revoke(w http.ResponseWriter, r *http.Request, rec *session.Record, v auth.Revocation) {
	f.revoked = append(f.revoked, v)
	w.WriteHeader(http.StatusUnauthorized)
}

func (f *fakeAuth) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.handled.Add(1)
		if s := scope.From(r.Context()); s != nil {
			f.signInFingerprint = s.Fingerprint
		}
		fmt.Fprint(w, "auth endpoint")
	})
}

func (f *fakeAuth) Owns(path string) bool { return path == "/.crmgate/callback" }

// identityRoutes marks the test routes: contacts need a user, the office
// route is optional, csp is public.
func identityRoutes(c *Config) {
	for i := range c.Routes {
		switch c.Routes[i].ID {
		case "office":
			c.Routes[i].Auth = AuthOptional
			c.Routes[i].AllowCIDRs = nil
			c.Routes[i].DenyCIDRs = nil
		case "csp":
			c.Routes[i].Auth = AuthNone
		}
	}
}

func alice() *scope.Subject {
	return &scope.Subject{Kind: scope.KindUser, ID: "alice", Email: "alice@example.com", Roles: []string{"sales", "support"}}
}

func TestIdentifyStage(t *testing.T) {
	up := echoUpstream(t)
	spoof := []string{"X-CRM-User", "mallory", "x-crm_roles", "admin", "X-Crm.Email", "m@evil.example", "X-CRM-Assertion", "forged"}

	t.Run("signed in: identity headers replace every client copy", func(t *testing.T) {
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: alice()}})
		w, e := do(g, req("GET", "/api/contacts/7", spoof...))
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		want := map[string]string{"X-Crm-User": "alice", "X-Crm-Roles": "sales,support", "X-Crm-Email": "alice@example.com"}
		for k, v := range want {
			if got := e.Header[k]; len(got) != 1 || got[0] != v {
				t.Errorf("upstream %s = %q, want [%q]", k, got, v)
			}
		}
		count := map[string]int{}
		for k, v := range e.Header {
			count[normName(k)] += len(v)
		}
		for n, want := range map[string]int{"x-crm-user": 1, "x-crm-roles": 1, "x-crm-email": 1, "x-crm-assertion": 0} {
			if count[n] != want {
				t.Errorf("upstream got %d %s header(s), want %d: %v", count[n], n, want, e.Header)
			}
		}
	})

	t.Run("no session on a required route: challenge, nothing forwarded", func(t *testing.T) {
		fa := &fakeAuth{}
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa})
		w, _ := do(g, req("GET", "/api/contacts/7", "Accept", "text/html"))
		if w.Code != http.StatusFound || fa.challenged.Load() != 1 {
			t.Fatalf("status %d, challenged %d; want 302 from the challenge", w.Code, fa.challenged.Load())
		}
	})

	t.Run("no session on an optional route: anonymous, spoofed identity removed", func(t *testing.T) {
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{}})
		w, e := do(g, req("GET", "/api/office", spoof...))
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		for k := range e.Header {
			if strings.HasPrefix(normName(k), "x-crm-") {
				t.Errorf("anonymous request carried %s: %q", k, e.Header[k])
			}
		}
	})

	t.Run("public route: the session is not even looked at", func(t *testing.T) {
		fa := &fakeAuth{err: fmt.Errorf("must not be called: %w", session.ErrUnavailable)}
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa})
		w, e := do(g, req("GET", "/csp", spoof...))
		if w.Code != 200 || e.Header.Get("X-Crm-User") != "" {
			t.Fatalf("status %d, X-CRM-User %q", w.Code, e.Header.Get("X-Crm-User"))
		}
	})

	t.Run("session store down: 503, fail closed", func(t *testing.T) {
		g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{err: fmt.Errorf("dial: %w", session.ErrUnavailable)}})
		for _, target := range []string{"/api/contacts/7", "/api/office"} {
			w, _ := do(g, req("GET", target))
			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("%s: status %d, want 503", target, w.Code)
			}
		}
	})

	t.Run("tampered or ambiguous cookie is no session", func(t *testing.T) {
		for _, err := range []error{session.ErrInvalidCookie, session.ErrAmbiguousCookie, session.ErrExpired} {
			fa := &fakeAuth{err: err}
			g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa})
			w, _ := do(g, req("GET", "/api/contacts/7"))
			if w.Code != http.StatusFound || fa.challenged.Load() != 1 {
				t.Errorf("%v: status %d, challenged %d", err, w.Code, fa.challenged.Load())
			}
		}
	})
}

// A subject whose values cannot travel in headers exactly is refused
// rather than changed on the way: header injection through an IdP claim.
func TestIdentifyUnforwardableSubject(t *testing.T) {
	up := echoUpstream(t)
	for name, sub := range map[string]*scope.Subject{
		"CRLF in id":        {Kind: scope.KindUser, ID: "alice\r\nX-CRM-Roles: admin"},
		"empty id":          {Kind: scope.KindUser, ID: ""},
		"non-ASCII e-mail":  {Kind: scope.KindUser, ID: "bob", Email: "bób@example.com"},
		"comma in role":     {Kind: scope.KindUser, ID: "bob", Roles: []string{"sales,admin"}},
		"NUL in role":       {Kind: scope.KindUser, ID: "bob", Roles: []string{"sales\x00"}},
		"padded role":       {Kind: scope.KindUser, ID: "bob", Roles: []string{" admin"}},
		"empty role":        {Kind: scope.KindUser, ID: "bob", Roles: []string{""}},
		"DEL in id":         {Kind: scope.KindUser, ID: "bob\x7f"},
		"tab in e-mail":     {Kind: scope.KindUser, ID: "bob", Email: "bob@example.com\t"},
		"unicode line sep.": {Kind: scope.KindUser, ID: "bob\u2028"},
	} {
		t.Run(name, func(t *testing.T) {
			g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &fakeAuth{sub: sub}})
			w, _ := do(g, req("GET", "/api/contacts/7"))
			if w.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.Code)
			}
			if (sub.ID != "" && strings.Contains(w.Body.String(), sub.ID)) || strings.Contains(w.Body.String(), "sales") || strings.Contains(w.Body.String(), "example.com") {
				t.Errorf("the refusal echoes the subject: %s", w.Body)
			}
		})
	}
}

func TestGatewayEndpoints(t *testing.T) {
	up := echoUpstream(t)
	fa := &fakeAuth{}
	g := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa})
	for _, tt := range []struct {
		target string
		want   int
	}{
		{"/.crmgate/callback?code=x&state=y", 200},
		{"/.crmgate/unknown", 404},
		{"/.crmgate/jwks.json", 404}, // no assertion keys configured
		{"/.crmgate/../.crmgate/callback", 400},
		{"/.crmgate/%2e%2e/api/contacts", 400},
		{"/.crmgate//callback", 400},
	} {
		w, _ := do(g, req("GET", tt.target))
		if w.Code != tt.want {
			t.Errorf("%s: status %d, want %d (%s)", tt.target, w.Code, tt.want, w.Body)
		}
	}
	if fa.handled.Load() != 1 {
		t.Errorf("auth handler reached %d times, want 1", fa.handled.Load())
	}

	// A large body to a gateway endpoint is cut off at 64 KiB.
	big := strings.NewReader(strings.Repeat("a", maxEndpointBody+1))
	r := httptest.NewRequest("POST", "https://crm.example.com/.crmgate/callback", big)
	r.RequestURI = "/.crmgate/callback"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	g2 := testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: &bodyReader{}})
	w := httptest.NewRecorder()
	g2.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized endpoint body: status %d, want 413: %s", w.Code, w.Body)
	}
}

// bodyReader is an Authenticator whose endpoint reads the whole body.
type bodyReader struct{ fakeAuth }

func (b *bodyReader) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	})
}

func TestAuthConfiguration(t *testing.T) {
	c := Config{
		Upstreams: map[string]UpstreamConfig{"crm": {URL: "http://127.0.0.1:1"}},
		Routes: []RouteConfig{
			{ID: "a", Path: "/api/a", Upstream: "crm"},
			{ID: "b", Path: "/.crmgate/x", Upstream: "crm", Auth: "none"},
			{ID: "c", Path: "/.CRMGATE", Upstream: "crm", Auth: "maybe"},
		},
	}
	c.Defaults()
	err := c.Validate()
	for _, want := range []string{"routes[1].path", "/.crmgate/", "routes[2].path", `routes[2].auth: "maybe" is not allowed`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want %q", err, want)
		}
	}
	c.Routes = c.Routes[:1]
	if _, err := New(c, Deps{}); err == nil || !strings.Contains(err.Error(), "route a requires an identified caller") {
		t.Errorf("New without an authenticator for a required route: %v", err)
	}
}

// With assertions on, the CRM receives exactly one assertion per request,
// signed by a published key and bound to that request; a client's copy
// never survives.
func TestIdentityAssertion(t *testing.T) {
	up := echoUpstream(t)
	key, err := assertion.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	withAssertion := func(c *Config) {
		identityRoutes(c)
		c.Assertion = assertion.Config{Enabled: true, Issuer: "https://crm.example.com", Keys: []secret.Ref{secret.FromValue(key)}}
	}
	g := testGatewayWith(t, up.URL, withAssertion, Deps{Auth: &fakeAuth{sub: alice()}})

	w, e := do(g, req("GET", "/api/contacts/7", "X-CRM-Assertion", "forged", "x_crm_assertion", "forged2"))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := e.Header.Values("X-Crm-Assertion")
	if len(got) != 1 || strings.HasPrefix(got[0], "forged") {
		t.Fatalf("upstream assertions %q", got)
	}
	for k := range e.Header {
		if normName(k) == "x-crm-assertion" && k != "X-Crm-Assertion" {
			t.Errorf("client spelling %s reached the CRM", k)
		}
	}

	jw, _ := do(g, req("GET", "/.crmgate/jwks.json"))
	if jw.Code != 200 || jw.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks: %d %v", jw.Code, jw.Header())
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jw.Body.Bytes(), &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(got[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("the signing key is not published: %s", jw.Body)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c assertion.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "alice" || c.Method != "GET" || c.Path != "/api/contacts/7" || c.RequestID != e.Header.Get("X-Request-Id") {
		t.Errorf("claims %+v, upstream request id %s", c, e.Header.Get("X-Request-Id"))
	}

	// Anonymous callers get no assertion, and their copy is removed.
	g2 := testGatewayWith(t, up.URL, withAssertion, Deps{Auth: &fakeAuth{}})
	_, e2 := do(g2, req("GET", "/api/office", "X-CRM-Assertion", "forged"))
	if v := e2.Header.Values("X-Crm-Assertion"); len(v) != 0 {
		t.Errorf("anonymous request carried an assertion: %q", v)
	}
}

// BenchmarkIdentifiedPipeline is BenchmarkGatewayPipeline for a signed-in
// caller: the identify stage (with a fixed-answer authenticator; the real
// session lookup is benchmarked in auth and session), the identity
// headers, and the signed assertion. Compare the sub-benchmarks with each
// other and with BenchmarkBareReverseProxy from the same run.
func BenchmarkIdentifiedPipeline(b *testing.B) {
	up := benchUpstream(b)
	key, err := assertion.GenerateKeyPEM()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name      string
		auth      string
		assertion bool
	}{{"public", AuthNone, false}, {"identified", AuthRequired, false}, {"identified+assertion", AuthRequired, true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := Config{
				Upstreams: map[string]UpstreamConfig{"crm": {URL: up.URL}},
				Routes:    []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: bc.auth}},
			}
			if bc.assertion {
				c.Assertion = assertion.Config{Enabled: true, Issuer: "https://crm.example.com", Keys: []secret.Ref{secret.FromValue(key)}}
			}
			c.Defaults()
			g, err := New(c, Deps{Auth: &fakeAuth{sub: alice()}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := req("GET", "/api/contacts/42", "User-Agent", "bench", "Accept", "application/json")
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
