package session

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/internal/redistest"
)

// redisServer is a real redis-server for one test.
type redisServer struct{ *redistest.Server }

func startRedis(t testing.TB) *redisServer { return &redisServer{redistest.Start(t)} }

// Client returns a client for the server, closed when the test ends, with
// the options the gateway uses (RedisConfig.RedisOptions) but short
// timeouts.
func (s *redisServer) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	cfg := RedisConfig{Mode: RedisSingle, Addrs: []string{s.Addr}, DialTimeout: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}
	o, err := cfg.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}
