package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClient is what RedisStore needs of a Redis client.
// redis.UniversalClient satisfies it, so a single node, a Sentinel-managed
// master and a Cluster all fit.
type RedisClient interface {
	redis.Scripter
	HMGet(ctx context.Context, key string, fields ...string) *redis.SliceCmd
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
	ZRangeByScore(ctx context.Context, key string, opt *redis.ZRangeBy) *redis.StringSliceCmd
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
	Ping(ctx context.Context) *redis.StatusCmd
}

var (
	_ RedisClient = (redis.UniversalClient)(nil)
	_ Store       = (*RedisStore)(nil)
)

// RedisStore keeps sessions in Redis, shared by every replica.
//
// Layout, under the configured prefix P:
//
//	P s:<key>    hash {v version, d sealed record, u user key, e expiry ms}
//	             with a TTL at the entry's expiry
//	P u:<ukey>   sorted set of the user's session keys, scored by expiry
//	P all        sorted set of every session key, scored by expiry
//	P lock:<n>   lock token, SET NX PX
//	P revoke     pub/sub channel of revocations (JSON Revocation)
//
// The indexes are written before the entry and may briefly name entries
// that no longer exist; readers check. Scripts touch one key each, so every
// command is routable in a Cluster. It keeps no local copy of any entry.
type RedisStore struct {
	c        RedisClient
	prefix   string
	now      func() time.Time
	log      *slog.Logger
	onRevoke func(Revocation)

	mu   sync.Mutex
	sub  *redis.PubSub
	done chan struct{}
}

// RedisOptions configures a RedisStore.
type RedisOptions struct {
	// Prefix starts every key and channel name; "" means "crmgate:session:".
	Prefix string
	// Now is the clock; nil means time.Now. Expiry checks use it; Redis
	// TTLs are set relative to it.
	Now func() time.Time
	// Logger receives subscription trouble; nil discards.
	Logger *slog.Logger
	// OnRevoke, when set, is called for every revocation published by any
	// replica (this one included) once Start has subscribed.
	OnRevoke func(Revocation)
}

// NewRedisStore returns a store on c. It sends nothing to Redis; Start
// subscribes to revocations.
func NewRedisStore(c RedisClient, o RedisOptions) *RedisStore {
	if o.Prefix == "" {
		o.Prefix = "crmgate:session:"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &RedisStore{c: c, prefix: o.Prefix, now: o.Now, log: o.Logger, onRevoke: o.OnRevoke}
}

func (s *RedisStore) entryKey(key string) string   { return s.prefix + "s:" + key }
func (s *RedisStore) userIndex(ukey string) string { return s.prefix + "u:" + ukey }
func (s *RedisStore) allIndex() string             { return s.prefix + "all" }
func (s *RedisStore) lockKey(name string) string   { return s.prefix + "lock:" + name }
func (s *RedisStore) channel() string              { return s.prefix + "revoke" }

func unavailable(op string, err error) error {
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}

// createScript: KEYS[1] entry; ARGV version, data, user key, expiry ms, ttl ms.
var createScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2], 'u', ARGV[3], 'e', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`

// updateScript is the optimistic version check: KEYS[1] entry; ARGV
// expected version, version, data, user key, expiry ms, ttl ms, now ms.
// 0 = no live entry, -1 = conflict, 1 = written.
var updateScript = `
local cur = redis.call('HMGET', KEYS[1], 'v', 'e')
if not cur[1] then return 0 end
if tonumber(cur[2]) <= tonumber(ARGV[7]) then return 0 end
if cur[1] ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3], 'u', ARGV[4], 'e', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1`

// indexScript adds a member to an index (never lowering its score), drops
// members expired by now, and keeps the index alive as long as its
// longest-lived member: KEYS[1] index; ARGV member, expiry ms, now ms.
var indexScript = `
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then
  local ttl = tonumber(top[2]) - tonumber(ARGV[3])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl)) end
end
return 1`

// unlockScript deletes the lock only if the token still holds it, so a
// holder whose lock expired cannot release someone else's.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func ms(t time.Time) int64 { return t.UnixMilli() }

// ttl is the time left until t by the store's clock, at least 1ms (Redis
// deletes a key at once for a non-positive expiry).
func (s *RedisStore) ttl(now, t time.Time) int64 {
	return max(t.Sub(now).Milliseconds(), 1)
}

// Get implements Store. It is one round trip.
func (s *RedisStore) Get(ctx context.Context, key string) (Entry, error) {
	vals, err := s.c.HMGet(ctx, s.entryKey(key), "v", "d", "u", "e").Result()
	if err != nil {
		return Entry{}, unavailable("get", err)
	}
	return s.parse(key, vals)
}

func (s *RedisStore) parse(key string, vals []any) (Entry, error) {
	if len(vals) != 4 || vals[0] == nil || vals[1] == nil || vals[3] == nil {
		return Entry{}, ErrNotFound
	}
	str := func(v any) string { s, _ := v.(string); return s }
	version, err1 := strconv.ParseUint(str(vals[0]), 10, 64)
	exp, err2 := strconv.ParseInt(str(vals[3]), 10, 64)
	if err1 != nil || err2 != nil {
		return Entry{}, ErrNotFound
	}
	e := Entry{Key: key, UserKey: str(vals[2]), Version: version, Data: []byte(str(vals[1])), Expires: time.UnixMilli(exp)}
	// Redis expires by its own clock; this check holds the entry to the
	// replicas' clock too.
	if !s.now().Before(e.Expires) {
		return Entry{}, ErrNotFound
	}
	return e, nil
}

// Create implements Store: the indexes and the entry in one round trip.
func (s *RedisStore) Create(ctx context.Context, e Entry) error {
	now := s.now()
	var create *redis.Cmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.index(ctx, p, e, now)
		create = p.Eval(ctx, createScript, []string{s.entryKey(e.Key)},
			e.Version, e.Data, e.UserKey, ms(e.Expires), s.ttl(now, e.Expires))
		return nil
	})
	if err != nil {
		return unavailable("create", err)
	}
	if n, _ := create.Int(); n == 0 {
		return ErrExists
	}
	return nil
}

func (s *RedisStore) index(ctx context.Context, p redis.Pipeliner, e Entry, now time.Time) {
	if e.UserKey != "" {
		p.Eval(ctx, indexScript, []string{s.userIndex(e.UserKey)}, e.Key, ms(e.Expires), ms(now))
	}
	p.Eval(ctx, indexScript, []string{s.allIndex()}, e.Key, ms(e.Expires), ms(now))
}

// Update implements Store: the version check and write are one script, run
// with the index updates in one round trip.
func (s *RedisStore) Update(ctx context.Context, e Entry, expect uint64) error {
	now := s.now()
	var upd *redis.Cmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		upd = p.Eval(ctx, updateScript, []string{s.entryKey(e.Key)},
			strconv.FormatUint(expect, 10), e.Version, e.Data, e.UserKey, ms(e.Expires), s.ttl(now, e.Expires), ms(now))
		s.index(ctx, p, e, now)
		return nil
	})
	if err != nil {
		return unavailable("update", err)
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

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, key string) error {
	_, err := s.deleteKeys(ctx, []string{key}, "")
	return err
}

// deleteKeys deletes entries, drops them from the indexes and publishes
// the revocation, in one round trip. It returns how many entries existed.
func (s *RedisStore) deleteKeys(ctx context.Context, keys []string, userKey string) (int, error) {
	msg, _ := json.Marshal(Revocation{Keys: keys})
	dels := make([]*redis.IntCmd, len(keys))
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		members := make([]any, len(keys))
		for i, k := range keys {
			dels[i] = p.Del(ctx, s.entryKey(k))
			members[i] = k
		}
		p.ZRem(ctx, s.allIndex(), members...)
		if userKey != "" {
			p.ZRem(ctx, s.userIndex(userKey), members...)
		}
		p.Publish(ctx, s.channel(), msg)
		return nil
	})
	if err != nil {
		return 0, unavailable("delete", err)
	}
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, nil
}

// deleteBatch bounds one pipeline of deletions.
const deleteBatch = 500

// DeleteUser implements Store. Only the members read are removed from the
// index, so a session created meanwhile stays indexed (it was created after
// the revocation began).
func (s *RedisStore) DeleteUser(ctx context.Context, userKey string) (int, error) {
	keys, err := s.c.ZRangeByScore(ctx, s.userIndex(userKey), &redis.ZRangeBy{Min: "-inf", Max: "+inf"}).Result()
	if err != nil {
		return 0, unavailable("delete user", err)
	}
	return s.deleteAllOf(ctx, keys, userKey)
}

func (s *RedisStore) deleteAllOf(ctx context.Context, keys []string, userKey string) (int, error) {
	total := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), deleteBatch)]
		keys = keys[len(batch):]
		n, err := s.deleteKeys(ctx, batch, userKey)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// DeleteAll implements Store. Per-user indexes are left to expire; they
// name only deleted entries now.
func (s *RedisStore) DeleteAll(ctx context.Context) (int, error) {
	keys, err := s.c.ZRangeByScore(ctx, s.allIndex(), &redis.ZRangeBy{Min: "-inf", Max: "+inf"}).Result()
	if err != nil {
		return 0, unavailable("delete all", err)
	}
	n, err := s.deleteAllOf(ctx, keys, "")
	if err != nil {
		return n, err
	}
	msg, _ := json.Marshal(Revocation{All: true})
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Publish(ctx, s.channel(), msg)
		return nil
	}); err != nil {
		return n, unavailable("delete all", err)
	}
	return n, nil
}

// List implements Store.
func (s *RedisStore) List(ctx context.Context) ([]Entry, error) {
	now := s.now()
	keys, err := s.c.ZRangeByScore(ctx, s.allIndex(), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(ms(now), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, unavailable("list", err)
	}
	out := make([]Entry, 0, len(keys))
	for len(keys) > 0 {
		batch := keys[:min(len(keys), deleteBatch)]
		keys = keys[len(batch):]
		cmds := make([]*redis.SliceCmd, len(batch))
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.HMGet(ctx, s.entryKey(k), "v", "d", "u", "e")
			}
			return nil
		})
		if err != nil {
			return nil, unavailable("list", err)
		}
		for i, c := range cmds {
			if e, err := s.parse(batch[i], c.Val()); err == nil {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// TryLock implements Locker with SET NX PX.
func (s *RedisStore) TryLock(ctx context.Context, name, token string, ttl time.Duration) error {
	ok, err := s.c.SetNX(ctx, s.lockKey(name), token, ttl).Result()
	if err != nil {
		return unavailable("lock", err)
	}
	if !ok {
		return ErrLocked
	}
	return nil
}

// Unlock implements Locker with a compare-and-delete script.
func (s *RedisStore) Unlock(ctx context.Context, name, token string) error {
	if err := unlockScript.Run(ctx, s.c, []string{s.lockKey(name)}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable("unlock", err)
	}
	return nil
}

// Ready reports whether Redis answers, for readiness checks.
func (s *RedisStore) Ready(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}
