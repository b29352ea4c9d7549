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
	p := b.get(f.authURL)
	for i := 1; i <= MaxLoginFailures; i++ {
		p = b.submit(p, map[string]string{"username": "alice", "password": "wrong"})
		wantMsg := "Wrong username or password"
		if i == MaxLoginFailures {
			wantMsg = "locked"
		}
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, wantMsg) {
			t.Fatalf("failure %d: status %d, want %d with %q:\n%s", i, p.status, http.StatusUnprocessableEntity, wantMsg, p.body)
		}
	}
	// Locked: even the right password is refused.
	p = b.submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "300" {
		t.Fatalf("locked account: status %d Retry-After %q, want %d and 300", p.status, p.header.Get("Retry-After"), http.StatusTooManyRequests)
	}
	// Another account is unaffected.
	fb := h.newFlow(h.oauth(gatewayID))
	h.login(h.browser(), fb, "bob")

	h.clock.Add(LockoutDuration - time.Second)
	p = b.submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "1" {
		t.Fatalf("one second before unlock: status %d Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	h.clock.Add(time.Second)
	p = b.submit(p, map[string]string{"username": "alice", "password": "alice-password"})
	h.exchange(f, h.code(p, f))
}

// Guessing the second factor counts too: the password does not reset it.
func TestLockoutAfterWrongCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	for i := 1; i <= MaxLoginFailures; i++ {
		f := h.newFlow(h.oauth(gatewayID))
		p := b.submit(b.get(f.authURL), map[string]string{"username": "dave", "password": "dave-password"})
		p = otpStep(t, b, p, h.wrongTOTP("dave"))
		if p.status != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code %d: status %d, want %d", i, p.status, http.StatusUnprocessableEntity)
		}
	}
	f := h.newFlow(h.oauth(gatewayID))
	p := b.submit(b.get(f.authURL), map[string]string{"username": "dave", "password": "dave-password"})
	if p.status != http.StatusTooManyRequests {
		t.Errorf("password after %d wrong codes: status %d, want %d", MaxLoginFailures, p.status, http.StatusTooManyRequests)
	}
}

// Unknown usernames get the same answer as wrong passwords.
func TestUnknownUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.browser()
	p := b.submit(b.get(h.newFlow(h.oauth(gatewayID)).authURL), map[string]string{"username": "mallory", "password": "x"})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Wrong username or password") {
		t.Errorf("unknown user: status %d:\n%s", p.status, p.body)
	}
}
