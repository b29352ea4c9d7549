package proxy

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
	"github.com/crmgate/crmgate/auth/bearer"
	"github.com/crmgate/crmgate/ratelimit"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// keyFixture is a real API key manager on a file store.
func keyFixture(t testing.TB) (*apikey.Manager, string) {
	t.Helper()
	store, err := apikey.OpenFileStore(filepath.Join(t.TempDir(), "apikeys.json"), apikey.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pepper := make([]byte, 32)
	_, _ = rand.Read(pepper)
	m, err := apikey.New(store, pepper, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	key, _, err := m.Create(context.Background(), apikey.Spec{Name: "integration", Owner: "ops", Scopes: []string{"contacts:read"}, Tier: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	return m, key
}

// fakeBearer accepts the token "good" and reports the store down for
// "down"; the real verifier is tested in auth/bearer.
type fakeBearer struct{}

func (fakeBearer) Verify(_ context.Context, raw string) (*scope.Subject, error) {
	switch raw {
	case "good":
		return &scope.Subject{Kind: scope.KindService, ID: "etl-client", Roles: []string{"sync"}}, nil
	case "user-pwd":
		return &scope.Subject{Kind: scope.KindUser, ID: "dana", ACR: "pwd", AMR: []string{"pwd"}, AuthTime: time.Now().Add(-time.Hour)}, nil
	case "user-mfa":
		return &scope.Subject{Kind: scope.KindUser, ID: "dana", ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: time.Now().Add(-time.Minute)}, nil
	case "down":
		return nil, fmt.Errorf("jwks: %w", bearer.ErrUnavailable)
	}
	return nil, bearer.ErrInvalidSignature
}

func apiDeps(t testing.TB, m APIKeyVerifier, tiers map[string]ratelimit.Tier) (Deps, func(*Config)) {
	rl := &ratelimit.Config{Tiers: tiers, Default: map[string]string{"api_key": "standard", "service": "standard", "anonymous": "standard"}, FailedCredentials: "failed"}
	rl.Defaults()
	d := Deps{APIKeys: m, APIKeySources: []apikey.Source{apikey.MustParseSource("header:X-API-Key"), apikey.MustParseSource("authorization:ApiKey")},
		Bearer: fakeBearer{}, Limiter: ratelimit.NewLocal(*rl, nil)}
	return d, func(c *Config) {
		c.RateLimit = rl
		for i := range c.Routes {
			switch c.Routes[i].ID {
			case "csp":
				c.Routes[i].Auth = AuthNone
			case "office":
				c.Routes[i].AllowCIDRs = nil
				c.Routes[i].Auth = AuthRequired
				c.Routes[i].UpstreamCredential = UpstreamCredentialConfig{Header: "Authorization", Value: secret.FromValue([]byte("Bearer crm-service-credential-0123456789"))}
			default:
				c.Routes[i].Auth = AuthRequired
			}
		}
	}
}

var bigTiers = map[string]ratelimit.Tier{"standard": {Limit: 1000}, "failed": {Limit: 1000}}

func TestAPIKeyAndBearerCredentials(t *testing.T) {
	up := echoUpstream(t)
	m, key := keyFixture(t)
	d, mod := apiDeps(t, m, bigTiers)
	g := testGatewayWith(t, up.URL, mod, d)
	id, _, _ := apikey.Parse(key)

	t.Run("a valid key identifies the caller; the key never reaches the CRM", func(t *testing.T) {
		for _, hdr := range [][]string{{"X-API-Key", key}, {"Authorization", "ApiKey " + key}} {
			w, e := do(g, req("GET", "/api/contacts/7", append(hdr, "X-CRM-User", "carol")...))
			if w.Code != 200 {
				t.Fatalf("%s: status %d: %s", hdr[0], w.Code, w.Body)
			}
			if got := e.Header.Get("X-Crm-User"); got != id {
				t.Errorf("%s: CRM saw user %q, want the key id %q", hdr[0], got, id)
			}
			for k, v := range e.Header {
				for _, x := range v {
					if strings.Contains(x, key) {
						t.Errorf("%s: the key reached the CRM in %s", hdr[0], k)
					}
				}
			}
			if w.Header().Get("RateLimit-Policy") == "" || w.Header().Get("RateLimit") == "" {
				t.Errorf("no RateLimit headers: %v", w.Header())
			}
		}
	})

	t.Run("a bearer token identifies a service", func(t *testing.T) {
		w, e := do(g, req("GET", "/api/contacts/7", "Authorization", "Bearer good"))
		if w.Code != 200 || e.Header.Get("X-Crm-User") != "etl-client" || e.Header.Get("Authorization") != "" {
			t.Fatalf("status %d, user %q, authorization %q", w.Code, e.Header.Get("X-Crm-User"), e.Header.Get("Authorization"))
		}
	})

	t.Run("credential translation", func(t *testing.T) {
		w, e := do(g, req("GET", "/api/office", "X-API-Key", key, "authorization", "Basic Y3JtOmNybQ=="))
		if w.Code != 401 {
			// X-API-Key with a foreign Authorization: both explicit.
			t.Logf("status %d", w.Code)
		}
		w, e = do(g, req("GET", "/api/office", "X-API-Key", key))
		if w.Code != 200 || e.Header.Get("Authorization") != "Bearer crm-service-credential-0123456789" {
			t.Errorf("status %d, CRM credential %q", w.Code, e.Header.Get("Authorization"))
		}
	})

	// Every bad form: 401 with a challenge and nothing that says which
	// part was wrong.
	for name, hdr := range map[string][]string{
		"no credential":                nil,
		"unknown key":                  {"X-API-Key", strings.Replace(key, key[4:8], "aaaa", 1)},
		"key with trailing space":      {"X-API-Key", key + " "},
		"key twice":                    {"X-API-Key", key, "X-Api-Key", key},
		"key in two spellings":         {"X-API-Key", key, "X_API_Key", key},
		"key and bearer":               {"X-API-Key", key, "Authorization", "Bearer good"},
		"bad bearer":                   {"Authorization", "Bearer forged"},
		"bearer with two spaces":       {"Authorization", "Bearer  good"},
		"lower-case scheme, bad":       {"Authorization", "bearer forged"},
		"truncated key":                {"X-API-Key", key[:len(key)-1]},
		"key as bearer token":          {"Authorization", "Bearer " + key},
		"1 MB key":                     {"X-API-Key", strings.Repeat("a", 1<<20)},
		"another key's id, our secret": {"X-API-Key", "crm_aaaaaaaaaaaa_" + key[17:]},
	} {
		t.Run(name, func(t *testing.T) {
			w, e := do(g, req("GET", "/api/contacts/7", hdr...))
			// A repeated single-value header is refused at intake (400).
			if w.Code != 401 && !(strings.HasPrefix(name, "key twice") || strings.HasPrefix(name, "key in two")) || w.Code == 200 {
				t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
			}
			if e.Path != "" {
				t.Error("forwarded")
			}
			if (w.Code == 401 && w.Header().Get("Www-Authenticate") == "") || strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "expired") {
				t.Errorf("challenge %q body %s", w.Header().Get("Www-Authenticate"), w.Body)
			}
		})
	}

	t.Run("verifier unavailable is 503", func(t *testing.T) {
		if w, _ := do(g, req("GET", "/api/contacts/7", "Authorization", "Bearer down")); w.Code != 503 {
			t.Errorf("status %d", w.Code)
		}
	})

	t.Run("revoked key", func(t *testing.T) {
		if err := m.Revoke(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if w, _ := do(g, req("GET", "/api/contacts/7", "X-API-Key", key)); w.Code != 401 {
			t.Errorf("status %d", w.Code)
		}
	})
}

func TestRateLimitStage(t *testing.T) {
	up := echoUpstream(t)
	m, key := keyFixture(t)
	d, mod := apiDeps(t, m, map[string]ratelimit.Tier{"standard": {Limit: 2, Window: time.Minute}, "failed": {Limit: 3, Window: time.Minute}})
	g := testGatewayWith(t, up.URL, mod, d)

	for i := range 2 {
		if w, _ := do(g, req("GET", "/api/contacts/7", "X-API-Key", key)); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w, e := do(g, req("GET", "/api/contacts/7", "X-API-Key", key))
	if w.Code != 429 || e.Path != "" || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Header().Get("RateLimit"), "r=0") {
		t.Fatalf("third request: %d, Retry-After %q, RateLimit %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("RateLimit"))
	}
	// Another spelling of the same key, or a spoofed X-Forwarded-For, is
	// the same allowance.
	for _, hdr := range [][]string{{"Authorization", "ApiKey " + key}, {"X-API-Key", key, "X-Forwarded-For", "198.51.100.7"}} {
		if w, _ := do(g, req("GET", "/api/contacts/7", hdr...)); w.Code != 429 {
			t.Errorf("%v: %d, want 429", hdr, w.Code)
		}
	}

	// Guessing keys: three refusals spend the failed tier of the address,
	// the fourth finds it spent; then even a valid credential from there
	// waits.
	g2 := testGatewayWith(t, up.URL, mod, func() Deps {
		d, _ := apiDeps(t, m, map[string]ratelimit.Tier{"standard": {Limit: 100}, "failed": {Limit: 3, Window: time.Minute}})
		return d
	}())
	_, key2, _ := func() (string, string, error) {
		k, _, err := m.Create(context.Background(), apikey.Spec{Name: "second", Tier: "standard"})
		return "", k, err
	}()
	for i := range 5 {
		w, _ := do(g2, req("GET", "/api/contacts/7", "X-API-Key", "crm_aaaaaaaaaaaa_"+key[17:]))
		if want := map[bool]int{true: 401, false: 429}[i < 4]; w.Code != want {
			t.Errorf("guess %d: %d, want %d", i, w.Code, want)
		}
	}
	if w, _ := do(g2, req("GET", "/api/contacts/7", "X-API-Key", key2)); w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("valid key from a blocked address: %d", w.Code)
	}
	// Another address is not blocked.
	r := req("GET", "/api/contacts/7", "X-API-Key", key2)
	r.RemoteAddr = "192.0.2.99:4444"
	if w, _ := do(g2, r); w.Code != 200 {
		t.Errorf("valid key from another address: %d", w.Code)
	}
}

// BenchmarkAPIKeyPipeline measures an API-key request with the local rate
// limit against the same route without them, in the same run.
func BenchmarkAPIKeyPipeline(b *testing.B) {
	up := benchUpstream(b)
	m, key := keyFixture(b)
	for _, bc := range []struct {
		name string
		auth string
		hdr  []string
	}{{"public", AuthNone, nil}, {"api_key+ratelimit", AuthRequired, []string{"X-API-Key", key}}} {
		b.Run(bc.name, func(b *testing.B) {
			rl := &ratelimit.Config{Tiers: map[string]ratelimit.Tier{"standard": {Limit: 1_000_000}}, Default: map[string]string{"api_key": "standard"}}
			rl.Defaults()
			c := Config{
				Upstreams: map[string]UpstreamConfig{"crm": {URL: up.URL}},
				Routes:    []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: bc.auth}},
				RateLimit: rl,
			}
			c.Defaults()
			g, err := New(c, Deps{APIKeys: m, APIKeySources: []apikey.Source{apikey.MustParseSource("header:X-API-Key")}, Limiter: ratelimit.NewLocal(*rl, nil)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r := req("GET", "/api/contacts/42", append([]string{"User-Agent", "bench", "Accept", "application/json"}, bc.hdr...)...)
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
