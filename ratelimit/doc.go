// Package ratelimit owns rate limiting: the tiers (named quotas) and their
// configuration, the limiters that check a request against a tier, the
// keys that name whose bucket a request draws from, and the RateLimit
// response header fields.
//
// It does not decide which key and tier apply to a request: the proxy stage
// that rate-limits picks them from the route, the subject and the policy
// decision's rate_limit.tier, builds the key with KeyForIP, KeyFor and
// WithRoute, and answers 429 (denied) or 503 (error) itself. It does not
// connect to Redis either: cmd builds the client from the redisconn
// section and passes it in.
//
// # Tiers
//
// A tier is a token bucket of Burst tokens refilled at Limit per Window:
// a client may send Burst requests at once after a quiet period, and Limit
// per Window on average. Every check takes one token or is denied; a
// denied check takes nothing, so a client that keeps retrying is not held
// back longer than one that waits. The Result says how many requests are
// left, how long until one more is allowed and how long until the bucket
// is full, which SetHeaders turns into RateLimit-Policy, RateLimit and
// Retry-After.
//
// # Limiters
//
// Local (backend: memory) keeps buckets in the process, on
// golang.org/x/time/rate, bounded by max_keys; each replica limits on its
// own. Redis (backend: redis) keeps them in Redis with GCRA, one atomic
// script call per check on the Redis server's clock, so all replicas share
// one bucket per key. New builds the one the configuration asks for, the
// Redis one behind a Fallback that on a Redis failure either refuses the
// check (on_redis_error: deny, the default: the caller answers 503) or
// answers from local buckets (local), and returns to Redis on its own
// once Redis answers.
//
// # Keys
//
// A client must not be able to multiply its quota by varying how it is
// named. KeyForIP counts an IPv4-mapped IPv6 address as the IPv4 address
// and an IPv6 address as its /64. KeyFor escapes or hashes the kind and id
// so no two (kind, id) pairs share a key and no key is longer than a few
// hundred bytes, whatever a client puts in an id.
package ratelimit
