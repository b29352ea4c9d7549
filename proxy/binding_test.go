package proxy

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/session/fingerprint"
)

// bindingPolicy revokes a session whose browser changed (and says which
// browsers it saw), re-binds one that moved network (with a level) or
// changed only its TLS fingerprint (without a level: an invalid request),
// revokes on /api/names/revoke whatever the fingerprint, and allows the
// rest.
const bindingPolicy = `package crmgate.authz

default decision := {"allow": true}

fp := input.session.fingerprint

decision := {"allow": false, "reason": concat(" ", [fp.user_agent.bound, fp.user_agent.current]), "session_action": "revoke"} if {
	fp.bound
	not fp.match
	"user_agent" in fp.changed
}

decision := {"allow": false, "reason": "moved", "session_action": "step_up", "step_up": {"acr": "mfa", "max_age_s": 300}} if {
	fp.bound
	not fp.match
	fp.changed == ["ip_prefix"]
}

decision := {"allow": true, "reason": "no level", "session_action": "step_up"} if {
	fp.bound
	not fp.match
	fp.changed == ["ja4"]
}

decision := {"allow": true, "reason": "everywhere", "session_action": "revoke"} if {
	input.request.path == "/api/names/revoke"
}
`

const (
	chrome130 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
	firefox   = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
	boundJA4  = "t13d1516h2_8daaf6152771_e5627efa2ab1"
)

func TestSessionBinding(t *testing.T) {
	up := echoUpstream(t)
	eng := testEngine(t, bindingPolicy)
	fpCfg := func(mod func(*fingerprint.Config)) *fingerprint.Config {
		c := fingerprint.Config{}
		if mod != nil {
			mod(&c)
		}
		c.Defaults()
		return &c
	}
	mfaUser := &scope.Subject{Kind: scope.KindUser, ID: "carol", ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: time.Now().Add(-time.Minute)}
	bound := map[string]string{"user_agent": "chrome/130", "ip_prefix": "192.0.2.0/24"}
	gateway := func(t *testing.T, fa *fakeAuth, fp *fingerprint.Config) (*Gateway, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		return testGatewayWith(t, up.URL, identityRoutes, Deps{Auth: fa, Policy: eng, Fingerprint: fp, Metrics: reg}), reg
	}

	t.Run("the client that signed in passes", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser, bound: bound}
		g, reg := gateway(t, fa, fpCfg(nil))
		// Same browser, same /24 (another address in it), any language.
		r := req("GET", "/api/contacts/7", "User-Agent", chrome130, "Accept-Language", "de")
		r.RemoteAddr = "192.0.2.200:4444"
		if w, e := do(g, r); w.Code != 200 || e.Path != "/api/contacts/7" {
			t.Fatalf("same client: %d %s", w.Code, w.Body)
		}
		if n := counterOf(t, reg, "crmgate_session_fingerprint_checks_total", "match"); n != 1 {
			t.Errorf("match checks = %v", n)
		}
	})

	t.Run("another browser is revoked, with both fingerprints", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser, bound: bound}
		g, reg := gateway(t, fa, fpCfg(nil))
		for _, ua := range []string{firefox, ""} {
			w, e := do(g, req("GET", "/api/contacts/7", "User-Agent", ua))
			if w.Code != http.StatusUnauthorized || e.Path != "" {
				t.Errorf("User-Agent %q: %d, forwarded %q", ua, w.Code, e.Path)
			}
		}
		if len(fa.revoked) != 2 {
			t.Fatalf("revocations = %d, want 2", len(fa.revoked))
		}
		v := fa.revoked[0]
		if v.Reason != "chrome/130 firefox/130" || !slices.Equal(v.Changed, []string{"user_agent"}) ||
			v.Bound["user_agent"] != "chrome/130" || v.Current["user_agent"] != "firefox/130" || v.Current["ip_prefix"] != "192.0.2.0/24" {
			t.Errorf("revocation = %+v", v)
		}
		// Withholding the User-Agent is a change, not a pass.
		if v := fa.revoked[1]; v.Reason != "chrome/130 " || v.Current["user_agent"] != "" {
			t.Errorf("revocation without a User-Agent = %+v", v)
		}
		if n := counterOf(t, reg, "crmgate_session_actions_total", "revoke"); n != 2 {
			t.Errorf("revoke actions = %v", n)
		}
	})

	t.Run("another network steps up even when the session is strong enough", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser, bound: bound}
		g, _ := gateway(t, fa, fpCfg(nil))
		r := req("GET", "/api/contacts/7", "User-Agent", chrome130)
		r.RemoteAddr = "198.51.100.7:4444"
		if w, e := do(g, r); w.Code != http.StatusSeeOther || e.Path != "" || fa.steppedUp.Load() != 1 || len(fa.revoked) != 0 {
			t.Errorf("moved: %d, forwarded %q, step-ups %d, revocations %d", w.Code, e.Path, fa.steppedUp.Load(), len(fa.revoked))
		}
	})

	t.Run("a session action the gateway cannot take is a deny", func(t *testing.T) {
		// step_up without a level, even with allow: true.
		fa := &fakeAuth{sub: mfaUser, bound: map[string]string{"ja4": boundJA4}}
		g, _ := gateway(t, fa, fpCfg(func(c *fingerprint.Config) { c.Components = []string{"ja4"}; c.TrustedJA4Header = "X-JA4" }))
		r := req("GET", "/api/contacts/7", "X-JA4", "t13d1516h2_8daaf6152771_000000000000", "X-Forwarded-For", "192.0.2.10")
		r.RemoteAddr = "10.1.2.3:443"
		if w, e := do(g, r); w.Code != http.StatusForbidden || e.Path != "" || fa.steppedUp.Load() != 0 {
			t.Errorf("step_up without a level: %d, forwarded %q, step-ups %d", w.Code, e.Path, fa.steppedUp.Load())
		}
		// revoke for a caller without a session (allow: true or not).
		m, key := keyFixture(t)
		d, mod := apiDeps(t, m, bigTiers)
		d.Policy = eng
		g = testGatewayWith(t, up.URL, mod, d)
		if w, e := do(g, req("GET", "/api/names/revoke", "X-API-Key", key)); w.Code != http.StatusForbidden || e.Path != "" {
			t.Errorf("revoke for an API key: %d, forwarded %q", w.Code, e.Path)
		}
	})

	t.Run("a revoke decision ends a matching session too", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser, bound: bound}
		g, _ := gateway(t, fa, fpCfg(nil))
		if w, e := do(g, req("GET", "/api/names/revoke", "User-Agent", chrome130)); w.Code != http.StatusUnauthorized || e.Path != "" || len(fa.revoked) != 1 {
			t.Fatalf("revoke: %d, forwarded %q, revocations %d", w.Code, e.Path, len(fa.revoked))
		}
		if v := fa.revoked[0]; v.Reason != "everywhere" || len(v.Changed) != 0 || v.Bound != nil {
			t.Errorf("a revocation without a fingerprint change = %+v", v)
		}
	})

	t.Run("the trusted JA4 header counts only from a trusted proxy", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser, bound: map[string]string{"ja4": boundJA4, "user_agent": "chrome/130"}}
		g, _ := gateway(t, fa, fpCfg(func(c *fingerprint.Config) {
			c.Components = []string{"ja4", "user_agent"}
			c.TrustedJA4Header = "x-ja4"
		}))
		viaProxy := req("GET", "/api/contacts/7", "User-Agent", chrome130, "X-JA4", boundJA4, "X-Forwarded-For", "192.0.2.10")
		viaProxy.RemoteAddr = "10.1.2.3:443"
		w, e := do(g, viaProxy)
		if w.Code != 200 {
			t.Fatalf("through the trusted proxy: %d %s", w.Code, w.Body)
		}
		for k := range e.Header {
			if strings.EqualFold(k, "X-Ja4") {
				t.Errorf("the JA4 header reached the CRM: %s", k)
			}
		}
		// A client that reaches the gateway directly and claims the
		// victim's JA4: the component is absent, so it has changed.
		direct := req("GET", "/api/contacts/7", "User-Agent", chrome130, "X-JA4", boundJA4)
		if w, e := do(g, direct); w.Code == 200 || e.Path != "" {
			t.Errorf("a direct client with a forged JA4 header: %d, forwarded %q", w.Code, e.Path)
		}
	})

	t.Run("unbound sessions are compared with nothing", func(t *testing.T) {
		fa := &fakeAuth{sub: mfaUser}
		g, reg := gateway(t, fa, fpCfg(nil))
		if w, _ := do(g, req("GET", "/api/contacts/7", "User-Agent", firefox)); w.Code != 200 {
			t.Errorf("unbound session: %d", w.Code)
		}
		if n := counterOf(t, reg, "crmgate_session_fingerprint_checks_total", "unbound"); n != 1 {
			t.Errorf("unbound checks = %v", n)
		}
	})

	t.Run("sign-in endpoints see the client's fingerprint to bind", func(t *testing.T) {
		fa := &fakeAuth{}
		g, _ := gateway(t, fa, fpCfg(nil))
		do(g, req("GET", "/.crmgate/callback?code=x", "User-Agent", chrome130))
		if fa.signInFingerprint["user_agent"] != "chrome/130" || fa.signInFingerprint["ip_prefix"] != "192.0.2.0/24" {
			t.Errorf("fingerprint at the callback = %v", fa.signInFingerprint)
		}
	})
}

// BenchmarkSessionBinding is the identified pipeline with and without the
// fingerprint check of every session request (computing the request's
// fingerprint from the connection's JA4 and comparing it with the bound
// one). Compare the two from the same run.
func BenchmarkSessionBinding(b *testing.B) {
	up := benchUpstream(b)
	for _, bind := range []bool{false, true} {
		name := "unbound"
		if bind {
			name = "bound"
		}
		b.Run(name, func(b *testing.B) {
			c := Config{
				Upstreams: map[string]UpstreamConfig{"crm": {URL: up.URL}},
				Routes:    []RouteConfig{{ID: "item", Path: "/api/contacts/{id}", Upstream: "crm", Auth: AuthRequired}},
			}
			c.Defaults()
			d := Deps{Auth: &fakeAuth{sub: alice(), bound: map[string]string{"ja4": boundJA4, "user_agent": "chrome/130", "ip_prefix": "192.0.2.0/24"}}}
			if bind {
				fp := fingerprint.Config{}
				fp.Defaults()
				d.Fingerprint = &fp
			}
			g, err := New(c, d)
			if err != nil {
				b.Fatal(err)
			}
			info := &connInfo{tls: &scope.TLSInfo{JA4: boundJA4}}
			b.ReportAllocs()
			for b.Loop() {
				r := req("GET", "/api/contacts/42", "User-Agent", chrome130, "Accept", "application/json")
				r = r.WithContext(withConnInfo(r.Context(), info))
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// counterOf is the value of the counter name with the one label value v.
func counterOf(t *testing.T, reg *prometheus.Registry, name, v string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if ls := m.GetLabel(); len(ls) == 1 && ls[0].GetValue() == v {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
