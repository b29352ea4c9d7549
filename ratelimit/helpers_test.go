package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crmgate/crmgate/internal/clocktest"
	"github.com/crmgate/crmgate/redisconn"
)

// fakeClock is the injected clock of the tests.
type fakeClock = clocktest.Clock

func newClock() *fakeClock { return clocktest.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

// testConfig has two tiers: standard, 10 a second in bursts of 5, and
// slow, 2 a minute.
func testConfig() Config {
	c := Config{Tiers: map[string]Tier{
		"standard": {Limit: 10, Burst: 5},
		"slow":     {Limit: 2, Window: time.Minute},
	}}
	c.Defaults()
	return c
}

// redisClient returns a client of addr, closed when the test ends, with the
// options the gateway uses (redisconn) but short timeouts, counting the
// commands it sends.
func redisClient(t testing.TB, addr string) (redis.UniversalClient, *commandCounter) {
	t.Helper()
	cfg := redisconn.Config{Mode: redisconn.Single, Addrs: []string{addr}, DialTimeout: 200 * time.Millisecond, Timeout: 500 * time.Millisecond}
	o, err := cfg.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewUniversalClient(o)
	t.Cleanup(func() { c.Close() })
	n := &commandCounter{}
	c.AddHook(n)
	return c, n
}

// commandCounter is a go-redis hook counting commands, each a round trip
// when not pipelined.
type commandCounter struct {
	n     atomic.Int64
	names sync.Map // command name -> *atomic.Int64
}

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		v, _ := h.names.LoadOrStore(cmd.Name(), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

func (h *commandCounter) count(name string) int64 {
	v, ok := h.names.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}
