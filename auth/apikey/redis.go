package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts every Redis key of the store unless configured
// otherwise.
const DefaultRedisPrefix = "crmgate:apikey:"

// RedisClient is what RedisStore needs of a Redis client.
// redis.UniversalClient satisfies it, so a single node, a Sentinel-managed
// master and a Cluster all fit.
type RedisClient interface {
	HMGet(ctx context.Context, key string, fields ...string) *redis.SliceCmd
	SMembers(ctx context.Context, key string) *redis.StringSliceCmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	Ping(ctx context.Context) *redis.StatusCmd
}

var (
	_ RedisClient = (redis.UniversalClient)(nil)
	_ Store       = (*RedisStore)(nil)
)

// RedisStore keeps API keys in Redis, shared by every replica.
//
// Layout, under the configured prefix P:
//
//	P k:<id>   hash {v version, r the record as JSON, u last use in Unix ms}
//	P ids      set of every key id, for List
//
// Get is one HMGET: the store keeps no local copy, so a revocation or
// rotation is in effect on every replica as soon as Redis has applied it.
// Records have no TTL: expired and disabled keys stay for audit until
// deleted. LastUsed lives in its own field so that MarkUsed neither
// rewrites the record nor bumps its version. The index is written before
// the record and may briefly name a record that no longer exists; List
// skips those. Scripts touch one key each, so every command is routable in
// a Cluster.
type RedisStore struct {
	c      RedisClient
	prefix string
}

// RedisOptions configures a RedisStore.
type RedisOptions struct {
	// Prefix starts every key name; "" means DefaultRedisPrefix.
	Prefix string
}

// NewRedisStore returns a store on c. It sends nothing to Redis.
func NewRedisStore(c RedisClient, o RedisOptions) *RedisStore {
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	return &RedisStore{c: c, prefix: o.Prefix}
}

func (s *RedisStore) recordKey(id string) string { return s.prefix + "k:" + id }
func (s *RedisStore) index() string              { return s.prefix + "ids" }

func redisUnavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// createScript: KEYS[1] record; ARGV version, record JSON, last use ms.
const createScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'r', ARGV[2], 'u', ARGV[3])
return 1`

// updateScript is the optimistic version check: KEYS[1] record; ARGV
// expected version, version, record JSON, last use ms. The later last use
// wins. 0 = no record, -1 = conflict, 1 = written.
const updateScript = `
local cur = redis.call('HMGET', KEYS[1], 'v', 'u')
if not cur[1] then return 0 end
if cur[1] ~= ARGV[1] then return -1 end
local u = ARGV[4]
if cur[2] and tonumber(cur[2]) > tonumber(u) then u = cur[2] end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', ARGV[3], 'u', u)
return 1`

// markScript moves the last use forward on an existing record only:
// KEYS[1] record; ARGV last use ms.
const markScript = `
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return 0 end
if tonumber(ARGV[1]) > tonumber(u) then redis.call('HSET', KEYS[1], 'u', ARGV[1]) end
return 1`

// unixMilli is t in Unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Get implements Store in one round trip.
func (s *RedisStore) Get(ctx context.Context, id string) (*Record, error) {
	vals, err := s.c.HMGet(ctx, s.recordKey(id), "v", "r", "u").Result()
	if err != nil {
		return nil, redisUnavailable("get", err)
	}
	return parseRedis(id, vals)
}

func parseRedis(id string, vals []any) (*Record, error) {
	if len(vals) != 3 || vals[0] == nil || vals[1] == nil {
		return nil, ErrNotFound
	}
	str := func(v any) string { s, _ := v.(string); return s }
	version, err := strconv.ParseUint(str(vals[0]), 10, 64)
	if err != nil {
		return nil, redisUnavailable("get", fmt.Errorf("key %s: version %q", id, str(vals[0])))
	}
	r := new(Record)
	if err := json.Unmarshal([]byte(str(vals[1])), r); err != nil {
		return nil, redisUnavailable("get", fmt.Errorf("key %s: %w", id, err))
	}
	if r.ID != id {
		return nil, redisUnavailable("get", fmt.Errorf("key %s holds the record of %q", id, r.ID))
	}
	if err := r.check(); err != nil {
		return nil, redisUnavailable("get", err)
	}
	r.Version = version
	if ms, err := strconv.ParseInt(str(vals[2]), 10, 64); err == nil && ms > 0 {
		if t := time.UnixMilli(ms); t.After(r.LastUsed) {
			r.LastUsed = t
		}
	}
	return r, nil
}

// Create implements Store: the index and the record in one round trip.
func (s *RedisStore) Create(ctx context.Context, r *Record) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var create *redis.Cmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.index(), r.ID)
		create = p.Eval(ctx, createScript, []string{s.recordKey(r.ID)}, r.Version, data, unixMilli(r.LastUsed))
		return nil
	})
	if err != nil {
		return redisUnavailable("create", err)
	}
	if n, _ := create.Int(); n == 0 {
		return ErrExists
	}
	return nil
}

// Update implements Store: the version check and the write are one script.
func (s *RedisStore) Update(ctx context.Context, r *Record, expect uint64) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var upd *redis.Cmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		upd = p.Eval(ctx, updateScript, []string{s.recordKey(r.ID)},
			strconv.FormatUint(expect, 10), r.Version, data, unixMilli(r.LastUsed))
		return nil
	})
	if err != nil {
		return redisUnavailable("update", err)
	}
	switch n, _ := upd.Int(); n {
	case 1:
		return nil
	case -1:
		return ErrConflict
	default:
		return ErrNotFound
	}
}

// Delete implements Store: the record and its index entry in one round
// trip.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.recordKey(id))
		p.SRem(ctx, s.index(), id)
		return nil
	})
	if err != nil {
		return redisUnavailable("delete", err)
	}
	return nil
}

// listBatch bounds one pipeline of List.
const listBatch = 500

// List implements Store.
func (s *RedisStore) List(ctx context.Context) ([]*Record, error) {
	ids, err := s.c.SMembers(ctx, s.index()).Result()
	if err != nil {
		return nil, redisUnavailable("list", err)
	}
	out := make([]*Record, 0, len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), listBatch)]
		ids = ids[len(batch):]
		cmds := make([]*redis.SliceCmd, len(batch))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range batch {
				cmds[i] = p.HMGet(ctx, s.recordKey(id), "v", "r", "u")
			}
			return nil
		})
		if err != nil {
			return nil, redisUnavailable("list", err)
		}
		for i, c := range cmds {
			r, err := parseRedis(batch[i], c.Val())
			switch {
			case err == nil:
				out = append(out, r)
			case !errors.Is(err, ErrNotFound):
				return nil, err
			}
		}
	}
	return out, nil
}

// MarkUsed implements Store in one round trip for the batch.
func (s *RedisStore) MarkUsed(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, t := range used {
			p.Eval(ctx, markScript, []string{s.recordKey(id)}, unixMilli(t))
		}
		return nil
	})
	if err != nil {
		return redisUnavailable("mark used", err)
	}
	return nil
}

// Ready reports whether Redis answers, for readiness checks.
func (s *RedisStore) Ready(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return redisUnavailable("ping", err)
	}
	return nil
}
