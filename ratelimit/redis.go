package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClient is what Redis needs of a Redis client. redis.UniversalClient
// satisfies it, so a single node, a Sentinel-managed master and a Cluster
// all fit.
type RedisClient interface {
	redis.Scripter
}

var _ RedisClient = (redis.UniversalClient)(nil)

// Redis keeps buckets in Redis, shared by every replica, with the generic
// cell rate algorithm (GCRA): a bucket is one key holding its theoretical
// arrival time, the moment it would be full again plus one period. A
// check is one EVALSHA of one script, so it is one round trip and atomic
// however many replicas check the same key (the first check after Redis
// starts, or forgets its scripts, adds an EVAL).
//
// Keys are KeyPrefix + tier + ":" + key, each with a TTL of the time until
// its bucket is full again plus a second (so that a sub-millisecond refill
// is not cut short by the TTL's millisecond grain and clock steps): an expired bucket and a full one are the same,
// so Redis holds only the buckets of recent clients.
//
// The script reads the Redis server's clock (TIME), so replicas whose own
// clocks disagree still agree on every bucket. It writes its outcome as a
// plain SET with an expiry, which Redis replicates as is (effects
// replication, the only kind since Redis 7), so replicas and the AOF never
// re-run the clock read.
type Redis struct {
	c      RedisClient
	tiers  map[string]*tierSpec
	prefix string
	now    func() time.Time
}

// gcraScript: KEYS[1] the bucket; ARGV[1] microseconds per token, ARGV[2]
// burst, ARGV[3] now in Unix microseconds, or "" for the server's clock.
// It returns {allowed 0|1, remaining, retry after µs, reset µs}. Times are
// Lua doubles, exact for microsecond timestamps; a slack of a picosecond
// absorbs their rounding, as tokenSlack does in Go.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local tolerance = burst * period
local next_tat = tat + period
local wait = next_tat - tolerance - now
if wait > 1e-6 then
  return {0, 0, math.ceil(wait - 1e-6), math.ceil(tat - now - 1e-6)}
end
local reset = next_tat - now
redis.call('SET', KEYS[1], string.format('%.17g', next_tat), 'PX', string.format('%d', math.ceil(reset / 1000) + 1000))
return {1, math.floor((tolerance - reset) / period + 1e-9), 0, math.ceil(reset - 1e-6)}
`)

// NewRedis returns a Redis for cfg's tiers and KeyPrefix on client; cfg
// must be valid. It sends nothing to Redis.
//
// now is for tests only and should be nil: then the script reads the Redis
// server's clock. A non-nil now is sent with every check instead, which
// makes results exact under a controlled clock but lets replicas with
// skewed clocks disagree.
func NewRedis(cfg Config, client RedisClient, now func() time.Time) *Redis {
	return &Redis{c: client, tiers: compileTiers(cfg.Tiers), prefix: cfg.KeyPrefix, now: now}
}

// Allow implements Limiter. Any failure to get an answer from Redis,
// including ctx ending first, wraps ErrUnavailable; the check is bounded
// by ctx and the client's timeouts.
func (r *Redis) Allow(ctx context.Context, key string, tier string) (Result, error) {
	t, err := lookup(r.tiers, key, tier)
	if err != nil {
		return Result{}, err
	}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	v, err := gcraScript.Run(ctx, r.c, []string{r.prefix + tier + ":" + key}, t.periodArg, t.burstArg, now).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("%w: redis: %w", ErrUnavailable, err)
	}
	if len(v) != 4 {
		return Result{}, fmt.Errorf("%w: redis: the script answered %d values, want 4", ErrUnavailable, len(v))
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      t.limit,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		Reset:      time.Duration(v[3]) * time.Microsecond,
	}, nil
}
