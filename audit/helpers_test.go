package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/secret"
)

// testSeed is a fixed signing key seed, so that test logs are reproducible.
var testSeed = []byte("0123456789abcdefghijklmnopqrstuv")

func testKey() (ed25519.PrivateKey, ed25519.PublicKey) {
	k := ed25519.NewKeyFromSeed(testSeed)
	return k, k.Public().(ed25519.PublicKey)
}

func fileConfig(dir string) FileConfig {
	c := Config{File: FileConfig{Path: filepath.Join(dir, "log", "audit.log"), SigningKey: secret.FromValue([]byte(hex.EncodeToString(testSeed)))}}
	c.Defaults()
	return c.File
}

func testConfig(t testing.TB) Config {
	dir := t.TempDir()
	c := Config{
		Spool:        SpoolConfig{Dir: filepath.Join(dir, "spool")},
		File:         fileConfig(dir),
		CloseTimeout: 2 * time.Second,
	}
	c.Defaults()
	return c
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// memSink records what it is given; while failing is set it refuses.
type memSink struct {
	name    string
	mu      sync.Mutex
	events  [][]byte
	failing atomic.Bool
	writes  atomic.Int64
	closed  atomic.Bool
}

func (s *memSink) Name() string { return s.name }
func (s *memSink) Write(_ context.Context, batch [][]byte) error {
	s.writes.Add(1)
	if s.failing.Load() {
		return errors.New("sink down")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range batch {
		s.events = append(s.events, append([]byte(nil), b...))
	}
	return nil
}
func (s *memSink) Close() error { s.closed.Store(true); return nil }
func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// messages returns the message field of every event the sink took.
func (s *memSink) messages(t testing.TB) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.events {
		var e struct{ Message string }
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("event %s: %v", b, err)
		}
		out = append(out, e.Message)
	}
	return out
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func reqEvent(i int) Event {
	return Event{
		Type: TypeHTTPRequest, Message: "m" + itoa(i), RequestID: "req-" + itoa(i),
		RouteID: "contacts.item", Method: "GET", Host: "crm.example.com", Path: "/api/contacts/42",
		UserAgent: "Mozilla/5.0", ClientIP: "203.0.113.7", Status: 200, Bytes: 1234,
		Duration:      12 * time.Millisecond,
		Subject:       Subject{Kind: "user", ID: "alice", Name: "alice@example.com", Roles: []string{"sales"}},
		SessionIDHash: "3f2a9c", Fingerprint: "match", PolicyRevision: "r42",
		Decision: Decision{Evaluated: true, Allow: true, Reason: "sales may read contacts", Redactions: 2},
		Upstream: "crm", UpstreamStatus: 200,
	}
}

func itoa(i int) string { return formatSeq(uint64(i)) }

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func ed25519Key(t testing.TB) (ed25519.PrivateKey, ed25519.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func osChtimes(t testing.TB, path string, tm time.Time) {
	t.Helper()
	if err := os.Chtimes(path, tm, tm); err != nil {
		t.Fatal(err)
	}
}
