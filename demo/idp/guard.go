package idp

import (
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// Lockout policy: after MaxLoginFailures failed passwords or codes in a row,
// an account refuses every attempt, right or wrong, for LockoutDuration.
const (
	MaxLoginFailures = 5
	LockoutDuration  = 5 * time.Minute
)

// TOTP parameters (RFC 6238): SHA-1, 6 digits, 30 s steps; one step of
// clock drift is accepted either way.
const (
	totpPeriod = 30
	totpSkew   = 1
)

var (
	errBadOTP      = errors.New("wrong code")
	errReplayedOTP = errors.New("code already used")
)

// maxTrackedFailures bounds the failure table: usernames are attacker input.
const maxTrackedFailures = 10_000

type failures struct {
	count       int
	lockedUntil time.Time
}

// guard counts failures per username and remembers the last TOTP step each
// user spent, so that a code works once.
type guard struct {
	now func() time.Time

	mu       sync.Mutex
	failures map[string]*failures
	lastStep map[string]uint64
}

func newGuard(now func() time.Time) *guard {
	return &guard{now: now, failures: make(map[string]*failures), lastStep: make(map[string]uint64)}
}

// locked returns how long username stays locked; zero means not locked.
func (g *guard) locked(username string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.failures[username]
	if !ok {
		return 0
	}
	if d := f.lockedUntil.Sub(g.now()); d > 0 {
		return d
	}
	return 0
}

// fail records a failure and reports whether it locked the account.
func (g *guard) fail(username string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	f, ok := g.failures[username]
	if !ok {
		if len(g.failures) >= maxTrackedFailures {
			g.pruneLocked(now)
		}
		f = &failures{}
		g.failures[username] = f
	}
	if now.Before(f.lockedUntil) {
		return true
	}
	f.count++
	if f.count >= MaxLoginFailures {
		f.count = 0
		f.lockedUntil = now.Add(LockoutDuration)
		return true
	}
	return false
}

// reset forgets the failures of username after a complete sign-in.
func (g *guard) reset(username string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, username)
}

// pruneLocked drops entries that are neither locked nor counting for long;
// if that is not enough, it drops the table. Must be called with g.mu held.
func (g *guard) pruneLocked(now time.Time) {
	for u, f := range g.failures {
		if !now.Before(f.lockedUntil) {
			delete(g.failures, u)
		}
	}
	if len(g.failures) >= maxTrackedFailures {
		clear(g.failures)
	}
}

// verifyTOTP checks code against secret at the current time step ± totpSkew
// and spends its step: a code already used, or one older than the last used,
// is refused (RFC 6238 §5.2).
func (g *guard) verifyTOTP(username, secret, code string) error {
	if len(code) != 6 {
		return errBadOTP
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := uint64(g.now().Unix() / totpPeriod)
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	for step := now - totpSkew; step <= now+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, step, opts)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if last, ok := g.lastStep[username]; ok && step <= last {
			return errReplayedOTP
		}
		g.lastStep[username] = step
		return nil
	}
	return errBadOTP
}
