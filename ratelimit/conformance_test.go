package ratelimit

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/internal/redistest"
)

// newLimiter builds the implementation under test for cfg on clock.
type newLimiter func(t *testing.T, cfg Config, clock *fakeClock) Limiter

func TestLocalConformance(t *testing.T) {
	testConformance(t, func(t *testing.T, cfg Config, clock *fakeClock) Limiter {
		return NewLocal(cfg, clock.Now)
	})
}

// The Redis limiter runs the suite on the test's clock (NewRedis's now),
// so that results are exact; TestRedisServerClock covers the server's
// clock that production uses.
func TestRedisConformance(t *testing.T) {
	srv := redistest.Start(t)
	client, _ := redisClient(t, srv.Addr)
	var n atomic.Int64
	testConformance(t, func(t *testing.T, cfg Config, clock *fakeClock) Limiter {
		cfg.KeyPrefix = fmt.Sprintf("test%d:", n.Add(1))
		return NewRedis(cfg, client, clock.Now)
	})
}

// step is one check of a scripted sequence.
type step struct {
	advance   time.Duration
	key, tier string
	want      Result
}

func allowed(remaining int, reset time.Duration) Result {
	return Result{Allowed: true, Limit: 10, Remaining: remaining, Reset: reset}
}

func denied(retry, reset time.Duration) Result {
	return Result{Limit: 10, RetryAfter: retry, Reset: reset}
}

const ms = time.Millisecond

// testConformance is the one suite every Limiter passes.
func testConformance(t *testing.T, newLim newLimiter) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"burst then refill", []step{
			{0, "a", "standard", allowed(4, 100*ms)},
			{0, "a", "standard", allowed(3, 200*ms)},
			{0, "a", "standard", allowed(2, 300*ms)},
			{0, "a", "standard", allowed(1, 400*ms)},
			{0, "a", "standard", allowed(0, 500*ms)},
			{0, "a", "standard", denied(100*ms, 500*ms)},
			{50 * ms, "a", "standard", denied(50*ms, 450*ms)},
			{49 * ms, "a", "standard", denied(1*ms, 401*ms)},
			{1 * ms, "a", "standard", allowed(0, 500*ms)},
			{250 * ms, "a", "standard", allowed(1, 350*ms)},
			{10 * time.Second, "a", "standard", allowed(4, 100*ms)},
		}},
		{"denied checks take nothing", []step{
			{0, "a", "standard", allowed(4, 100*ms)},
			{0, "a", "standard", allowed(3, 200*ms)},
			{0, "a", "standard", allowed(2, 300*ms)},
			{0, "a", "standard", allowed(1, 400*ms)},
			{0, "a", "standard", allowed(0, 500*ms)},
			{0, "a", "standard", denied(100*ms, 500*ms)},
			{0, "a", "standard", denied(100*ms, 500*ms)},
			{0, "a", "standard", denied(100*ms, 500*ms)},
			{100 * ms, "a", "standard", allowed(0, 500*ms)},
		}},
		{"minute window", []step{
			{0, "a", "slow", Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 30 * time.Second}},
			{0, "a", "slow", Result{Allowed: true, Limit: 2, Remaining: 0, Reset: time.Minute}},
			{0, "a", "slow", Result{Limit: 2, RetryAfter: 30 * time.Second, Reset: time.Minute}},
			{29 * time.Second, "a", "slow", Result{Limit: 2, RetryAfter: time.Second, Reset: 31 * time.Second}},
			{time.Second, "a", "slow", Result{Allowed: true, Limit: 2, Remaining: 0, Reset: time.Minute}},
		}},
		{"keys and tiers are independent", []step{
			{0, "a", "slow", Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 30 * time.Second}},
			{0, "a", "slow", Result{Allowed: true, Limit: 2, Remaining: 0, Reset: time.Minute}},
			{0, "a", "slow", Result{Limit: 2, RetryAfter: 30 * time.Second, Reset: time.Minute}},
			{0, "b", "slow", Result{Allowed: true, Limit: 2, Remaining: 1, Reset: 30 * time.Second}},
			{0, "a", "standard", allowed(4, 100*ms)},
			{0, "a:slow", "standard", allowed(4, 100*ms)},
			{0, "a", "slow", Result{Limit: 2, RetryAfter: 30 * time.Second, Reset: time.Minute}},
		}},
		{"sub-millisecond period", []step{
			{0, "a", "fast", Result{Allowed: true, Limit: 4000, Remaining: 1, Reset: 250 * time.Microsecond}},
			{0, "a", "fast", Result{Allowed: true, Limit: 4000, Remaining: 0, Reset: 500 * time.Microsecond}},
			{0, "a", "fast", Result{Limit: 4000, RetryAfter: 250 * time.Microsecond, Reset: 500 * time.Microsecond}},
			{250 * time.Microsecond, "a", "fast", Result{Allowed: true, Limit: 4000, Remaining: 0, Reset: 500 * time.Microsecond}},
		}},
		// The longest refill there is: a day a token, 2700 years to full.
		{"extreme tier", []step{
			{0, "a", "extreme", Result{Allowed: true, Limit: 1, Remaining: MaxQuota - 1, Reset: 24 * time.Hour}},
			{0, "b", "extreme", Result{Allowed: true, Limit: 1, Remaining: MaxQuota - 1, Reset: 24 * time.Hour}},
			{0, "a", "extreme", Result{Allowed: true, Limit: 1, Remaining: MaxQuota - 2, Reset: 48 * time.Hour}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Tiers["fast"] = Tier{Limit: 4000, Window: time.Second, Burst: 2}
			cfg.Tiers["extreme"] = Tier{Limit: 1, Window: MaxWindow, Burst: MaxQuota}
			clock := newClock()
			lim := newLim(t, cfg, clock)
			for i, s := range tc.steps {
				clock.Advance(s.advance)
				got, err := lim.Allow(t.Context(), s.key, s.tier)
				if err != nil {
					t.Fatalf("step %d: Allow(%q, %q) error %v", i, s.key, s.tier, err)
				}
				if d := cmp.Diff(got, s.want); d != "" {
					t.Errorf("step %d: Allow(%q, %q) (-got +want):\n%s", i, s.key, s.tier, d)
				}
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		lim := newLim(t, testConfig(), newClock())
		for _, tc := range []struct {
			name, key, tier string
			want            error
		}{
			{"unknown tier", "a", "gold", ErrUnknownTier},
			{"empty tier", "a", "", ErrUnknownTier},
			{"empty key", "", "standard", ErrInvalidKey},
			{"long key", strings.Repeat("k", MaxKeyLen+1), "standard", ErrInvalidKey},
			{"longest key", strings.Repeat("k", MaxKeyLen), "standard", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := lim.Allow(t.Context(), tc.key, tc.tier)
				if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
					t.Fatalf("Allow(%.20q, %q) = %v, want %v", tc.key, tc.tier, err, tc.want)
				}
				if err != nil && got != (Result{}) {
					t.Errorf("Allow(%.20q, %q) = %+v with an error, want the zero Result", tc.key, tc.tier, got)
				}
			})
		}
	})

	// Checks on one key from many goroutines take exactly the burst.
	t.Run("concurrent checks on one key", func(t *testing.T) {
		cfg := testConfig()
		cfg.Tiers["hourly"] = Tier{Limit: 100, Window: time.Hour, Burst: 100}
		lim := newLim(t, cfg, newClock())
		var ok atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 10 {
					r, err := lim.Allow(t.Context(), "a", "hourly")
					if err != nil {
						t.Error(err)
						return
					}
					if r.Allowed {
						ok.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := ok.Load(); got != 100 {
			t.Errorf("allowed %d of 200 concurrent checks, want 100", got)
		}
	})
}
