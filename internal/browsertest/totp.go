package browsertest

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP returns the current RFC 6238 code for the base32 secret, as an
// authenticator app would show it, for a form's otp field.
func TOTP(t testing.TB, secret string) string {
	t.Helper()
	return TOTPAt(t, secret, time.Now())
}

// TOTPAt returns the RFC 6238 code for the base32 secret in the time step
// that holds at, for servers that run on a test clock. The parameters are
// the ones authenticator apps assume: six digits, a 30-second step,
// HMAC-SHA1 (RFC 6238 §4, RFC 4226 §5.3).
func TOTPAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		t.Fatalf("TOTP code: %v", err)
	}
	return code
}
