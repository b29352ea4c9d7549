package idp

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLockoutAfterWrongPasswords(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.IDTokenTTL = time.Hour })
	b := h.browser()
	f := h.newFlow(h.oauth(gatewayID))
	p := b.Get(f.authURL)
	for i := 1; i <= MaxLoginFailures; i++ {
		p = b.Submit(p, map[string]string{"username": "alice", "password": "wrong"})
		wantMsg := "Wrong username or password"
		if i == MaxLoginFailures {
			wantMsg = "locked"
		}
		if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, wantMsg) {
			t.Fatalf("failure %d: status %d, want %d with %q:\n%s", i, p.Status, http.StatusUnprocessableEntity, wantMsg, p.Body)
		}
	}
	// Locked: even the right password is refused.
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "300" {
		t.Fatalf("locked account: status %d Retry-After %q, want %d and 300", p.Status, p.Header.Get("Retry-After"), http.StatusTooManyRequests)
	}
	// Another account is unaffected.
	fb := h.newFlow(h.oauth(gatewayID))
	h.login(h.browser(), fb, "bob")

	h.clock.Add(LockoutDuration - time.Second)
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "1" {
		t.Fatalf("one second before unlock: status %d Retry-After %q", p.Status, p.Header.Get("Retry-After"))
	}
	h.clock.Add(time.Second)
	p = b.Submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	h.exchange(f, h.code(p, f))
}

// Guessing the second factor counts too: the password does not reset it.
func TestLockoutAfterWrongCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	for i := 1; i <= MaxLoginFailures; i++ {
		f := h.newFlow(h.oauth(gatewayID))
		p := b.Submit(b.Get(f.authURL), map[string]string{"username": "dave", "password": "dave-password"})
		p = otpStep(t, b, p, h.wrongTOTP("dave"))
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code %d: status %d, want %d", i, p.Status, http.StatusUnprocessableEntity)
		}
	}
	f := h.newFlow(h.oauth(gatewayID))
	p := b.Submit(b.Get(f.authURL), map[string]string{"username": "dave", "password": "dave-password"})
	if p.Status != http.StatusTooManyRequests {
		t.Errorf("password after %d wrong codes: status %d, want %d", MaxLoginFailures, p.Status, http.StatusTooManyRequests)
	}
}

// Unknown usernames get the same answer as wrong passwords.
func TestUnknownUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	p := b.Submit(b.Get(h.newFlow(h.oauth(gatewayID)).authURL), map[string]string{"username": "mallory", "password": "x"})
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "Wrong username or password") {
		t.Errorf("unknown user: status %d:\n%s", p.Status, p.Body)
	}
}
