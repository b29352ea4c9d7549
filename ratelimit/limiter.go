package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Result is the outcome of one check.
type Result struct {
	// Allowed reports whether the request may go on; it took one token.
	Allowed bool
	// Limit is the tier's Limit (requests per window).
	Limit int
	// Remaining is how many more requests would be allowed right now (>= 0).
	Remaining int
	// RetryAfter is, when denied, how long until one request would be
	// allowed; 0 when allowed.
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again (0: it is full).
	Reset time.Duration
}

// Limiter checks requests against a tier's quota for a key. Local, Redis
// and Fallback implement it; all are safe for concurrent use.
type Limiter interface {
	// Allow takes one token from the bucket of key in tier, if there is one.
	// key should come from KeyForIP, KeyFor or WithRoute. The error wraps
	// ErrUnknownTier, ErrInvalidKey or ErrUnavailable; with an error the
	// Result is the zero value and the request must not go on.
	Allow(ctx context.Context, key string, tier string) (Result, error)
}

var (
	_ Limiter = (*Local)(nil)
	_ Limiter = (*Redis)(nil)
	_ Limiter = (*Fallback)(nil)
)

var (
	// ErrUnknownTier means the tier is not configured: a configuration
	// mistake (the caller answers 500), not a client's.
	ErrUnknownTier = errors.New("ratelimit: unknown tier")
	// ErrInvalidKey means the key is empty or longer than MaxKeyLen.
	ErrInvalidKey = errors.New("ratelimit: invalid key")
	// ErrUnavailable means the shared backend could not be asked; the
	// caller fails closed (503).
	ErrUnavailable = errors.New("ratelimit: backend unavailable")
)

// MaxKeyLen is the longest key Allow accepts. Keys from KeyForIP, KeyFor
// and WithRoute are always shorter.
const MaxKeyLen = 512

// New builds the limiter cfg asks for: a Local for the memory backend; for
// the redis backend a Redis on client that reads the Redis server's clock,
// behind a Fallback that falls back to a Local (on_redis_error: local) or
// fails fast (deny) while Redis is failing. cfg must have had Defaults
// applied; New validates it. client may be nil for the memory backend. now
// is the clock of local buckets (nil: time.Now); log receives outage and
// recovery messages (nil: discarded).
func New(cfg Config, client RedisClient, now func() time.Time, log *slog.Logger) (Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend == BackendMemory {
		return NewLocal(cfg, now), nil
	}
	if client == nil {
		return nil, errors.New("ratelimit: the redis backend needs a Redis client")
	}
	var local *Local
	if cfg.OnRedisError == OnRedisErrorLocal {
		local = NewLocal(cfg, now)
	}
	return NewFallback(NewRedis(cfg, client, nil), local, now, log), nil
}

// tierSpec is a Tier turned into what the limiters compute with.
type tierSpec struct {
	limit  int
	burst  int
	rate   rate.Limit // tokens per second
	period float64    // nanoseconds per token (Window/Limit)
	fill   int64      // nanoseconds from empty to full

	// The Redis script's arguments: microseconds per token, burst.
	periodArg, burstArg string
}

func compileTiers(tiers map[string]Tier) map[string]*tierSpec {
	out := make(map[string]*tierSpec, len(tiers))
	for name, t := range tiers {
		t.defaults()
		period := float64(t.Window) / float64(t.Limit)
		out[name] = &tierSpec{
			limit:     t.Limit,
			burst:     t.Burst,
			rate:      rate.Limit(float64(t.Limit) / t.Window.Seconds()),
			period:    period,
			fill:      int64(ceilDuration(float64(t.Burst) * period)),
			periodArg: strconv.FormatFloat(period/1e3, 'g', -1, 64),
			burstArg:  strconv.Itoa(t.Burst),
		}
	}
	return out
}

// lookup finds tier and checks key, the checks every limiter does first.
func lookup(tiers map[string]*tierSpec, key, tier string) (*tierSpec, error) {
	t, ok := tiers[tier]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTier, tier)
	}
	if key == "" || len(key) > MaxKeyLen {
		return nil, fmt.Errorf("%w: %d bytes (1 to %d allowed)", ErrInvalidKey, len(key), MaxKeyLen)
	}
	return t, nil
}

// tokenSlack absorbs float rounding: a bucket holding 2.9999999999 tokens
// after exact refills holds 3.
const tokenSlack = 1e-9

// result describes a bucket of tier t holding tokens after a check.
func (t *tierSpec) result(allowed bool, tokens float64) Result {
	tokens = max(tokens, 0)
	r := Result{Allowed: allowed, Limit: t.limit}
	r.Reset = ceilDuration((float64(t.burst) - tokens) * t.period)
	if allowed {
		r.Remaining = int(math.Floor(tokens + tokenSlack))
	} else {
		r.RetryAfter = max(ceilDuration((1-tokens)*t.period), 1)
	}
	return r
}

// ceilDuration rounds ns up to a whole nanosecond, ignoring float noise
// below a picosecond; negative becomes 0, beyond 292 years the longest
// Duration (a burst of a million a day takes longer than that to refill).
func ceilDuration(ns float64) time.Duration {
	switch {
	case ns <= 0:
		return 0
	case ns >= math.MaxInt64:
		return math.MaxInt64
	}
	return time.Duration(math.Ceil(ns - 1e-3))
}
