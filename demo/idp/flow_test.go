package idp

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/crmgate/crmgate/internal/browsertest"
)

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))

	p := b.Get(f.authURL)
	if p.Status != http.StatusOK || p.URL.Path != loginPath {
		t.Fatalf("GET authorize ended at %s with %d, want the login page", p.URL, p.Status)
	}
	_, fields := browsertest.ParseForm(t, p)
	for _, name := range []string{"username", "password", "csrf", authRequestParam} {
		if !fields.Has(name) {
			t.Errorf("login form has no %q field", name)
		}
	}
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	tok, idt, claims := h.exchange(f, h.code(p, f))

	if idt.Issuer != h.issuer || idt.Subject != "alice" || !cmp.Equal(idt.Audience, []string{gatewayID}) {
		t.Errorf("id token iss, sub, aud = %q, %q, %q", idt.Issuer, idt.Subject, idt.Audience)
	}
	want := tokenClaims{
		Email: "alice@example.com", EmailVerified: true, Username: "alice", Roles: []string{"sales"},
		ACR: ACRPassword, AMR: []string{AMRPassword}, AuthTime: h.clock.Now().Unix(), SID: claims.SID,
	}
	if diff := cmp.Diff(claims, want); diff != "" {
		t.Errorf("id token claims (-got +want):\n%s", diff)
	}
	if claims.SID == "" {
		t.Error("id token has no sid")
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token issued without offline_access")
	}

	// The access token is a JWT with the roles and the authentication.
	at, err := h.rpProvider().Verifier(&oidc.Config{ClientID: gatewayID, Now: h.clock.Now}).Verify(h.ctx(), tok.AccessToken)
	if err != nil {
		t.Fatalf("Verify(access_token): %v", err)
	}
	var atClaims tokenClaims
	if err := at.Claims(&atClaims); err != nil {
		t.Fatal(err)
	}
	wantAT := tokenClaims{Roles: []string{"sales"}, ACR: ACRPassword, AMR: []string{AMRPassword}, AuthTime: h.clock.Now().Unix()}
	if diff := cmp.Diff(atClaims, wantAT); diff != "" {
		t.Errorf("access token claims (-got +want):\n%s", diff)
	}

	// Userinfo answers with the same user claims.
	info, err := h.rpProvider().UserInfo(h.ctx(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	var infoClaims tokenClaims
	if err := info.Claims(&infoClaims); err != nil {
		t.Fatal(err)
	}
	wantInfo := tokenClaims{Email: "alice@example.com", EmailVerified: true, Username: "alice", Roles: []string{"sales"}}
	if diff := cmp.Diff(infoClaims, wantInfo); diff != "" {
		t.Errorf("userinfo claims (-got +want):\n%s", diff)
	}
}

func TestLoginPageHeaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	p := b.Get(h.newFlow(h.oauth(gatewayID)).authURL)
	csp := p.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "form-action 'self' " + h.rp.URL, "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, want)
		}
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := p.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(p.Body, "http://") || strings.Contains(p.Body, "https://") {
		t.Errorf("login page refers to an external URL:\n%s", p.Body)
	}
}

// Login CSRF: a form posted without this browser's binding cookie, or with
// a token for another request, is refused.
func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name   string
		mangle func(victim *browsertest.Browser, form map[string]string) *browsertest.Browser
	}{
		{"wrong token", func(victim *browsertest.Browser, form map[string]string) *browsertest.Browser {
			form["csrf"] = "forged"
			return victim
		}},
		{"other browser", func(_ *browsertest.Browser, _ map[string]string) *browsertest.Browser { return h.browser() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			victim := h.browser()
			p := victim.Get(h.newFlow(h.oauth(gatewayID)).authURL)
			action, values := browsertest.ParseForm(t, p)
			form := map[string]string{"username": "alice", "password": "alice-password"}
			for k := range values {
				form[k] = values.Get(k)
			}
			poster := tt.mangle(victim, form)
			vals := make(map[string][]string)
			for k, v := range form {
				vals[k] = []string{v}
			}
			got := poster.Post(action, vals, nil)
			if got.Status != http.StatusForbidden {
				t.Errorf("POST %s status = %d, want %d", tt.name, got.Status, http.StatusForbidden)
			}
		})
	}
}

func TestWrongPasswordShowsFormAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	p := b.Submit(b.Get(f.authURL), map[string]string{"username": "alice", "password": "nope"})
	if p.Status != http.StatusUnprocessableEntity || p.URL.Path != loginPath {
		t.Fatalf("wrong password: status %d at %s, want %d at the login form", p.Status, p.URL, http.StatusUnprocessableEntity)
	}
	if !strings.Contains(p.Body, "Wrong username or password") {
		t.Errorf("no error message on the form:\n%s", p.Body)
	}
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	h.exchange(f, h.code(p, f))
}

// The single sign-on session answers a new request without a form, unless
// max_age or prompt=login asks for a fresh authentication.
func TestSessionReuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		advance  time.Duration
		opts     []oauth2.AuthCodeOption
		wantForm bool
	}{
		{name: "plain", wantForm: false},
		{name: "max_age not reached", advance: time.Minute, opts: []oauth2.AuthCodeOption{param("max_age", "3600")}, wantForm: false},
		{name: "max_age exceeded", advance: 2 * time.Minute, opts: []oauth2.AuthCodeOption{param("max_age", "60")}, wantForm: true},
		{name: "max_age=0", opts: []oauth2.AuthCodeOption{param("max_age", "0")}, wantForm: true},
		{name: "prompt=login", opts: []oauth2.AuthCodeOption{param("prompt", "login")}, wantForm: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			f := h.newFlow(h.oauth(gatewayID))
			_, _, first := h.exchange(f, h.login(b, f, "alice"))
			h.clock.Add(10*time.Second + tt.advance)

			f2 := h.newFlow(h.oauth(gatewayID), tt.opts...)
			p := b.Get(f2.authURL)
			_, atCallback := h.atCallback(p)
			if gotForm := p.URL.Path == loginPath && !atCallback; gotForm != tt.wantForm {
				t.Fatalf("login form shown = %v, want %v (ended at %s)", gotForm, tt.wantForm, p.URL)
			}
			if tt.wantForm {
				p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
			}
			_, _, second := h.exchange(f2, h.code(p, f2))
			wantAuthTime := first.AuthTime
			if tt.wantForm {
				wantAuthTime = h.clock.Now().Unix()
			}
			if second.AuthTime != wantAuthTime {
				t.Errorf("auth_time = %d, want %d", second.AuthTime, wantAuthTime)
			}
			if second.SID != first.SID {
				t.Errorf("sid changed from %q to %q within one browser session", first.SID, second.SID)
			}
		})
	}
}

func TestPromptNoneWithoutSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := h.newFlow(h.oauth(gatewayID), param("prompt", "none"))
	p := h.browser().Get(f.authURL)
	q, ok := h.atCallback(p)
	if !ok {
		t.Fatalf("ended at %s, want the callback", p.URL)
	}
	got := map[string]string{"error": q.Get("error"), "state": q.Get("state"), "iss": q.Get("iss")}
	want := map[string]string{"error": "login_required", "state": f.state, "iss": h.issuer}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("error response (-got +want):\n%s", diff)
	}
}
