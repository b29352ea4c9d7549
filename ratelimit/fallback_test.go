package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/internal/redistest"
)

// stubLimiter stands in for Redis: it fails with err when set.
type stubLimiter struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (s *stubLimiter) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *stubLimiter) Allow(ctx context.Context, key, tier string) (Result, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return Result{}, s.err
	}
	return Result{Allowed: true, Limit: 1000, Remaining: 999}, nil
}

// logRecorder keeps "LEVEL message" of every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Level.String()+" "+r.Message)
	return nil
}

func (h *logRecorder) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.recs...)
}

var errDown = fmt.Errorf("%w: redis: dial tcp: connection refused", ErrUnavailable)

func TestFallback(t *testing.T) {
	fromShared := Result{Allowed: true, Limit: 1000, Remaining: 999}
	for _, tc := range []struct {
		name    string
		local   bool
		degrade Result // what a check answers while Redis fails
		err     error
		warn    string
	}{
		{"deny", false, Result{}, ErrUnavailable, "WARN ratelimit: redis failed; rate-limited requests are refused until it answers"},
		{"local", true, Result{Allowed: true, Limit: 10, Remaining: 4, Reset: 100 * ms}, nil, "WARN ratelimit: redis failed; limiting on this replica alone until it answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			shared := &stubLimiter{}
			var local *Local
			if tc.local {
				local = NewLocal(testConfig(), clock.Now)
			}
			logs := &logRecorder{}
			f := NewFallback(shared, local, clock.Now, slog.New(logs))
			ctx := t.Context()
			// check makes one check on a fresh key and reports whether it
			// asked shared.
			n := 0
			check := func(want Result, wantErr error) bool {
				t.Helper()
				n++
				before := shared.calls.Load()
				got, err := f.Allow(ctx, fmt.Sprintf("k%d", n), "standard")
				if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
					t.Fatalf("check %d: Allow = %v, want %v", n, err, wantErr)
				}
				if d := cmp.Diff(got, want); d != "" {
					t.Fatalf("check %d: Allow (-got +want):\n%s", n, d)
				}
				return shared.calls.Load() > before
			}

			if !check(fromShared, nil) {
				t.Fatal("a check while Redis answers did not ask it")
			}
			shared.fail(errDown)
			for i := range tripAfter {
				if !check(tc.degrade, tc.err) {
					t.Fatalf("failure %d did not ask Redis", i+1)
				}
			}
			// Tripped: no waiting on Redis until a second has passed, then
			// one check tries it.
			for range 5 {
				if check(tc.degrade, tc.err) {
					t.Fatal("a check after 3 failures in a row asked Redis")
				}
			}
			clock.Advance(probeEvery)
			if !check(tc.degrade, tc.err) {
				t.Fatal("no check asked Redis after a second")
			}
			if check(tc.degrade, tc.err) {
				t.Fatal("a second check asked Redis within the same second")
			}
			shared.fail(nil)
			if check(tc.degrade, tc.err) {
				t.Fatal("a check asked Redis before the next second")
			}
			clock.Advance(probeEvery)
			for range 3 {
				if !check(fromShared, nil) {
					t.Fatal("a check after Redis answered again did not ask it")
				}
			}
			want := []string{tc.warn, "INFO ratelimit: redis answers again; limits are shared again"}
			if d := cmp.Diff(logs.lines(), want); d != "" {
				t.Errorf("logs (-got +want):\n%s", d)
			}
		})
	}
}

// Errors that are not Redis failing neither count as an outage nor fall
// back.
func TestFallbackPassesOtherErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		cancel bool
	}{
		{"unknown tier", fmt.Errorf("%w %q", ErrUnknownTier, "gold"), false},
		{"invalid key", ErrInvalidKey, false},
		{"request over", fmt.Errorf("%w: %w", ErrUnavailable, context.Canceled), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			shared := &stubLimiter{}
			shared.fail(tc.err)
			logs := &logRecorder{}
			f := NewFallback(shared, NewLocal(testConfig(), clock.Now), clock.Now, slog.New(logs))
			ctx, cancel := context.WithCancel(t.Context())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			for range 2 * tripAfter {
				if _, err := f.Allow(ctx, "a", "standard"); !errors.Is(err, tc.err) {
					t.Fatalf("Allow = %v, want %v", err, tc.err)
				}
			}
			if got := shared.calls.Load(); got != 2*tripAfter {
				t.Errorf("%d checks asked Redis %d times, want every time", 2*tripAfter, got)
			}
			if got := logs.lines(); len(got) != 0 {
				t.Errorf("logs = %q, want none", got)
			}
		})
	}
}

// Redis stops and comes back: deny fails fast, local keeps limiting, and
// both return to Redis by themselves.
func TestFallbackRedisOutage(t *testing.T) {
	for _, mode := range []string{OnRedisErrorDeny, OnRedisErrorLocal} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			client, _ := redisClient(t, srv.Addr)
			cfg := testConfig()
			cfg.Backend, cfg.OnRedisError = BackendRedis, mode
			clock := newClock()
			logs := &logRecorder{}
			lim, err := New(cfg, client, clock.Now, slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			inRedis := func(key string) bool {
				n, _ := client.Exists(ctx, "crmgate:ratelimit:standard:"+key).Result()
				return n == 1
			}
			if r, err := lim.Allow(ctx, "before", "standard"); err != nil || !r.Allowed || !inRedis("before") {
				t.Fatalf("Allow with Redis up = %+v, %v, want allowed and kept in Redis", r, err)
			}

			srv.Stop()
			var allowed int
			for i := range 8 {
				start := time.Now()
				r, err := lim.Allow(ctx, "during", "standard")
				took := time.Since(start)
				if took > time.Second {
					t.Errorf("check %d with Redis down took %s, want well under a second", i, took)
				}
				switch mode {
				case OnRedisErrorDeny:
					if !errors.Is(err, ErrUnavailable) {
						t.Fatalf("check %d with Redis down: Allow = %+v, %v, want ErrUnavailable", i, r, err)
					}
				case OnRedisErrorLocal:
					if err != nil {
						t.Fatalf("check %d with Redis down: Allow = %v, want a local answer", i, err)
					}
					if r.Allowed {
						allowed++
					}
				}
			}
			if mode == OnRedisErrorLocal && allowed != 5 {
				t.Errorf("with Redis down %d of 8 checks were allowed, want the burst of 5", allowed)
			}

			srv.Restart(t)
			// The pool may hold a dead connection; a probe a second should
			// find Redis within a few.
			for i := 0; !inRedis("after"); i++ {
				if i == 5 {
					t.Fatalf("not back on Redis %d seconds after it restarted; logs %q", i, logs.lines())
				}
				clock.Advance(probeEvery)
				lim.Allow(ctx, "after", "standard")
			}
			if r, err := lim.Allow(ctx, "after2", "standard"); err != nil || !r.Allowed || !inRedis("after2") {
				t.Fatalf("Allow after Redis came back = %+v, %v, want allowed and kept in Redis", r, err)
			}
			got := logs.lines()
			if len(got) != 2 || got[0][:4] != "WARN" || got[1][:4] != "INFO" {
				t.Errorf("logs = %q, want one warning and one recovery", got)
			}
		})
	}
}
