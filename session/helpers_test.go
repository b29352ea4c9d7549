package session

import (
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/clocktest"
	"github.com/crmgate/crmgate/secret"
)

// fakeClock is the injected clock of the tests.
type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

// testKey returns a deterministic 32-byte key named by seed.
func testKey(seed string) []byte {
	k := sha256.Sum256([]byte("crmgate session test key " + seed))
	return k[:]
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

func refs(keys ...[]byte) []secret.Ref {
	out := make([]secret.Ref, len(keys))
	for i, k := range keys {
		out[i] = secret.FromValue(k)
	}
	return out
}

func testConfig(keys ...[]byte) Config {
	c := Config{Keys: refs(keys...)}
	c.Defaults()
	return c
}

func newTestManager(t testing.TB, store Store, clock *fakeClock, keys ...[]byte) *Manager {
	t.Helper()
	m, err := New(testConfig(keys...), store, nil, clock.Now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// aliceRecord is a typical record at login, before Start.
func aliceRecord(now time.Time) *Record {
	return &Record{
		UserID:   "alice",
		Email:    "alice@example.com",
		Roles:    []string{"sales", "support"},
		Groups:   []string{"emea"},
		ACR:      "urn:crmgate:acr:mfa",
		AMR:      []string{"pwd", "otp"},
		AuthTime: now.Add(-time.Minute),
		Claims:   map[string]any{"tenant": "acme", "department": "sales"},
		Tokens: Tokens{
			IDToken:      "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ." + fakeJWTBody(600) + ".sig",
			RefreshToken: "rt-" + fakeJWTBody(64),
			Expiry:       now.Add(time.Hour),
		},
		Fingerprint: map[string]string{"ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1", "ip_prefix": "203.0.113.0/24", "ua": "Mozilla/5.0"},
	}
}

func fakeJWTBody(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[(i*7+3)%len(alphabet)]
	}
	return string(b)
}

// startSession runs Manager.Start for rec and returns the cookie value set.
func startSession(t testing.TB, m *Manager, rec *Record, old ID) string {
	t.Helper()
	w := httptest.NewRecorder()
	if err := m.Start(t.Context(), w, rec, old); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == m.CookieName() {
			return c.Value
		}
	}
	t.Fatalf("Start set no %s cookie; headers %v", m.CookieName(), w.Header())
	return ""
}

// requestWithCookies builds a request carrying one Cookie header per line.
func requestWithCookies(lines ...string) *http.Request {
	r := httptest.NewRequest("GET", "https://crm.example.com/", nil)
	for _, l := range lines {
		r.Header.Add("Cookie", l)
	}
	return r
}
