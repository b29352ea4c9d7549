package idp

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/internal/browsertest"
	"github.com/crmgate/crmgate/internal/clocktest"
)

// otpStep posts code on the second-factor page p.
func otpStep(t *testing.T, b *browsertest.Browser, p browsertest.Page, code string) browsertest.Page {
	t.Helper()
	if p.URL.Path != otpPath {
		t.Fatalf("at %s (status %d), want the second-factor page:\n%s", p.URL, p.Status, p.Body)
	}
	if _, fields := browsertest.ParseForm(t, p); !fields.Has("otp") {
		t.Fatalf("second-factor form has no otp field:\n%s", p.Body)
	}
	return b.Submit(p, map[string]string{"otp": code})
}

func TestStepUpWithTOTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID), param("acr_values", ACRMFA))
	p := b.Submit(b.Get(f.authURL), map[string]string{"username": "alice", "password": "alice-password"})

	// A wrong code shows the form again.
	p = otpStep(t, b, p, h.wrongTOTP("alice"))
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "Wrong code") {
		t.Fatalf("wrong code: status %d, want %d with an error:\n%s", p.Status, http.StatusUnprocessableEntity, p.Body)
	}

	code := h.totp("alice")
	p = otpStep(t, b, p, code)
	_, _, claims := h.exchange(f, h.code(p, f))
	got := tokenClaims{ACR: claims.ACR, AMR: claims.AMR, AuthTime: claims.AuthTime}
	want := tokenClaims{ACR: ACRMFA, AMR: []string{AMRPassword, AMROTP}, AuthTime: h.clock.Now().Unix()}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("authentication claims (-got +want):\n%s", diff)
	}

	// Replay: the same code in the same time step, in a fresh login, is refused.
	f2 := h.newFlow(h.oauth(gatewayID), param("acr_values", ACRMFA), param("prompt", "login"))
	p = b.Submit(b.Get(f2.authURL), map[string]string{"username": "alice", "password": "alice-password"})
	p = otpStep(t, b, p, code)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "already used") {
		t.Fatalf("replayed code: status %d, want %d with an error:\n%s", p.Status, http.StatusUnprocessableEntity, p.Body)
	}
	h.clock.Add(30 * time.Second)
	p = otpStep(t, b, p, h.totp("alice"))
	h.exchange(f2, h.code(p, f2))
}

// A session with the password alone is stepped up by the code alone.
func TestStepUpFromPasswordSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	_, _, first := h.exchange(f, h.login(b, f, "bob"))
	if first.ACR != ACRPassword {
		t.Fatalf("first acr = %q, want %q", first.ACR, ACRPassword)
	}
	h.clock.Add(time.Minute)

	f2 := h.newFlow(h.oauth(gatewayID), param("acr_values", ACRMFA))
	p := otpStep(t, b, b.Get(f2.authURL), h.totp("bob"))
	_, _, second := h.exchange(f2, h.code(p, f2))
	got := tokenClaims{ACR: second.ACR, AMR: second.AMR, AuthTime: second.AuthTime, SID: second.SID}
	want := tokenClaims{ACR: ACRMFA, AMR: []string{AMRPassword, AMROTP}, AuthTime: h.clock.Now().Unix(), SID: first.SID}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("stepped-up claims (-got +want):\n%s", diff)
	}

	// The session now has both factors: no page at all next time.
	f3 := h.newFlow(h.oauth(gatewayID), param("acr_values", ACRMFA))
	_, _, third := h.exchange(f3, h.code(b.Get(f3.authURL), f3))
	if third.ACR != ACRMFA {
		t.Errorf("third acr = %q, want %q", third.ACR, ACRMFA)
	}
}

func TestAlwaysMFAUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	p := b.Submit(b.Get(f.authURL), map[string]string{"username": "dave", "password": "dave-password"})
	p = otpStep(t, b, p, h.totp("dave"))
	_, _, claims := h.exchange(f, h.code(p, f))
	if diff := cmp.Diff(claims.AMR, []string{AMRPassword, AMROTP}); claims.ACR != ACRMFA || diff != "" {
		t.Errorf("acr = %q, amr diff (-got +want):\n%s", claims.ACR, diff)
	}
}

func TestVerifyTOTP(t *testing.T) {
	t.Parallel()
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	code := func(at time.Time) string {
		t.Helper()
		h := &harness{t: t, users: map[string]testUser{"u": {secret: secret}}, clock: clocktest.New(at)}
		return h.totp("u")
	}
	base := time.Unix(1_700_000_010, 0) // 10 s into a 30 s step
	tests := []struct {
		name    string
		codeAt  time.Time
		spend   []time.Time // codes accepted before
		wantErr error
	}{
		{name: "current step", codeAt: base},
		{name: "previous step (drift)", codeAt: base.Add(-30 * time.Second)},
		{name: "next step (drift)", codeAt: base.Add(30 * time.Second)},
		{name: "two steps old", codeAt: base.Add(-60 * time.Second), wantErr: errBadOTP},
		{name: "replayed", codeAt: base, spend: []time.Time{base}, wantErr: errReplayedOTP},
		{name: "older than the last used", codeAt: base.Add(-30 * time.Second), spend: []time.Time{base}, wantErr: errReplayedOTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuard(func() time.Time { return base })
			for _, at := range tt.spend {
				if err := g.verifyTOTP("u", secret, code(at)); err != nil {
					t.Fatalf("spending a code: %v", err)
				}
			}
			if err := g.verifyTOTP("u", secret, code(tt.codeAt)); !errors.Is(err, tt.wantErr) {
				t.Errorf("verifyTOTP() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
