package apikey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/internal/clocktest"
	"github.com/crmgate/crmgate/internal/redistest"
	"github.com/crmgate/crmgate/redisconn"
)

// fakeClock is the injected clock of the tests.
type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

// testPepper returns a deterministic 32-byte pepper named by seed.
func testPepper(seed string) []byte {
	p := sha256.Sum256([]byte("crmgate apikey test pepper " + seed))
	return p[:]
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// keyFile returns a path for a key file in a fresh folder.
func keyFile(t testing.TB) string {
	return filepath.Join(t.TempDir(), "apikeys.json")
}

// openFile opens a FileStore on path, closed when the test ends.
func openFile(t testing.TB, path string, o FileOptions) *FileStore {
	t.Helper()
	s, err := OpenFileStore(path, o)
	if err != nil {
		t.Fatalf("OpenFileStore(%s) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newManager(t testing.TB, store Store, clock *fakeClock, log *slog.Logger) *Manager {
	t.Helper()
	m, err := New(store, testPepper("a"), clock.Now, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// create makes a key with m and returns its plaintext and record.
func create(t testing.TB, m *Manager, spec Spec) (string, *Record) {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "test key"
	}
	pt, rec, err := m.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("Create(%+v) = %v", spec, err)
	}
	return pt, rec
}

// otherSecret returns a well-formed key with key's id and another secret.
func otherSecret(t testing.TB, key string) string {
	t.Helper()
	id, _, err := Parse(key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	k.id = id
	return k.Plaintext()
}

// unknownKey returns a well-formed key that no store holds.
func unknownKey(t testing.TB) string {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Plaintext()
}

// startRedis runs a real redis-server and returns a client for it with
// the options the gateway uses but short timeouts.
func startRedis(t testing.TB) (*redistest.Server, redis.UniversalClient) {
	t.Helper()
	srv := redistest.Start(t)
	return srv, redisClient(t, srv.Addr)
}

func redisClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	cfg := redisconn.Config{Mode: redisconn.Single, Addrs: []string{addr}, DialTimeout: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}
	o, err := cfg.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrips counts what a client sends: a pipeline is one round trip.
// The handshake of a new connection is not counted.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch strings.ToLower(cmd.Name()) {
		case "hello", "client", "auth", "select":
		default:
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// eventually polls cond every 10 ms until it holds or d passes, and
// returns how long it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
