package ratelimit

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/redistest"
)

// A check is one round trip: one EVALSHA, plus one EVAL only when Redis
// does not know the script yet.
func TestRedisOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	client, counter := redisClient(t, srv.Addr)
	lim := NewRedis(testConfig(), client, nil)
	// Connecting sends HELLO and CLIENT SETINFO; count from a connection
	// already open.
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		prepare func()
		checks  int
		want    int64
	}{
		{"first check loads the script", func() {}, 1, 2},
		{"then one each", func() {}, 100, 100},
		{"after SCRIPT FLUSH", func() { client.ScriptFlush(t.Context()) }, 10, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prepare()
			before := counter.n.Load()
			for i := range tc.checks {
				if _, err := lim.Allow(t.Context(), fmt.Sprintf("k%d", i%7), "standard"); err != nil {
					t.Fatal(err)
				}
			}
			if got := counter.n.Load() - before; got != tc.want {
				t.Errorf("%d checks sent %d commands, want %d", tc.checks, got, tc.want)
			}
		})
	}
	if n := counter.count("evalsha"); n != 111 {
		t.Errorf("sent %d EVALSHA, want 111", n)
	}
}

// Each bucket expires when it would be full again: Redis holds only the
// buckets of recent clients.
func TestRedisKeyTTL(t *testing.T) {
	srv := redistest.Start(t)
	client, _ := redisClient(t, srv.Addr)
	clock := newClock()
	lim := NewRedis(testConfig(), client, clock.Now)
	for _, tc := range []struct {
		name     string
		key      string
		tier     string
		checks   int
		min, max time.Duration
	}{
		// Redis counts the TTL down in real time: the lower bounds leave
		// room for a slow machine. Every TTL has a second of slack.
		{"one check", "a", "standard", 1, 1001 * ms, 1100 * ms},
		{"empty bucket", "b", "standard", 5, 1300 * ms, 1500 * ms},
		{"denied checks do not extend it", "c", "standard", 8, 1300 * ms, 1500 * ms},
		{"minute window", "a", "slow", 2, 51 * time.Second, time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range tc.checks {
				if _, err := lim.Allow(t.Context(), tc.key, tc.tier); err != nil {
					t.Fatal(err)
				}
			}
			name := "crmgate:ratelimit:" + tc.tier + ":" + tc.key
			ttl, err := client.PTTL(t.Context(), name).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl < tc.min || ttl > tc.max {
				t.Errorf("PTTL %s = %s, want between %s and %s", name, ttl, tc.min, tc.max)
			}
		})
	}
}

// Production reads the Redis server's clock; a burst is honoured and the
// bucket refills by it.
func TestRedisServerClock(t *testing.T) {
	srv := redistest.Start(t)
	client, _ := redisClient(t, srv.Addr)
	cfg := testConfig()
	cfg.Tiers["half"] = Tier{Limit: 2, Window: time.Second, Burst: 3} // 500ms a token
	lim := NewRedis(cfg, client, nil)
	for i := range 3 {
		r, err := lim.Allow(t.Context(), "a", "half")
		if err != nil || !r.Allowed || r.Remaining != 2-i {
			t.Fatalf("check %d: Allow = %+v, %v, want allowed with %d remaining", i, r, err, 2-i)
		}
	}
	r, err := lim.Allow(t.Context(), "a", "half")
	if err != nil || r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > 500*ms || r.Reset <= time.Second || r.Reset > 1500*ms {
		t.Fatalf("Allow after the burst = %+v, %v, want denied, retry within 500ms, reset in 1s to 1.5s", r, err)
	}
	time.Sleep(r.RetryAfter + 5*ms)
	if r, err := lim.Allow(t.Context(), "a", "half"); err != nil || !r.Allowed {
		t.Fatalf("Allow after RetryAfter = %+v, %v, want allowed", r, err)
	}
}

// The script reads TIME and then writes: a replica must end up with the
// master's value, not re-run the script on its own clock.
func TestRedisReplication(t *testing.T) {
	master, replica := redistest.Start(t), redistest.Start(t)
	mc, _ := redisClient(t, master.Addr)
	rc, _ := redisClient(t, replica.Addr)
	ctx := t.Context()
	// Sync at once, through the socket, leaving no dump.rdb behind.
	if err := mc.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.ConfigSet(ctx, "repl-diskless-load", "on-empty-db").Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(master.Addr)
	if err := rc.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ := mc.Info(ctx, "replication").Result()
		if strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not sync within 10s:\n%s", info)
		}
		time.Sleep(20 * ms)
	}
	lim := NewRedis(testConfig(), mc, nil)
	for range 2 {
		// slow: the key lives a minute, long enough to compare.
		if _, err := lim.Allow(ctx, "a", "slow"); err != nil {
			t.Fatal(err)
		}
	}
	if err := mc.Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
		t.Fatal(err)
	}
	name := "crmgate:ratelimit:slow:a"
	want, err := mc.Get(ctx, name).Result()
	if err != nil {
		t.Fatal(err)
	}
	got, err := rc.Get(ctx, name).Result()
	if err != nil || got != want {
		t.Errorf("replica GET %s = %q, %v, want the master's %q", name, got, err, want)
	}
	if ttl, err := rc.PTTL(ctx, name).Result(); err != nil || ttl <= 0 {
		t.Errorf("replica PTTL %s = %s, %v, want a TTL", name, ttl, err)
	}
}

// Many replicas' worth of concurrent checks on one key admit what the tier
// allows: the burst plus Limit per Window for the time they ran.
func TestRedisAccuracy(t *testing.T) {
	srv := redistest.Start(t)
	client, _ := redisClient(t, srv.Addr)
	cfg := testConfig()
	cfg.Tiers["api"] = Tier{Limit: 1000, Window: time.Second, Burst: 100}
	lim := NewRedis(cfg, client, nil)
	const run = 1500 * time.Millisecond
	var admitted, checks atomic.Int64
	var wg, ready sync.WaitGroup
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Every worker holds an open connection before the clock starts, so
	// the first checks do not wait for connects.
	var start time.Time
	begin := make(chan struct{})
	for range 32 {
		ready.Add(1)
		wg.Go(func() {
			client.Ping(ctx)
			ready.Done()
			<-begin
			for time.Since(start) < run {
				r, err := lim.Allow(ctx, "shared", "api")
				if err != nil {
					t.Error(err)
					return
				}
				checks.Add(1)
				if r.Allowed {
					admitted.Add(1)
				}
			}
		})
	}
	ready.Wait()
	start = time.Now()
	close(begin)
	wg.Wait()
	elapsed := time.Since(start)
	// Checks were sent from start to start+run (the last ones answered a
	// little later: elapsed), so the tier allowed the burst plus the refill
	// of run, and of the round trip of the last checks, about a
	// millisecond's worth.
	want := 100 + 1000*run.Seconds()
	got := float64(admitted.Load())
	dev := (got - want) / want
	t.Logf("admitted %d of %d checks in %s: %.2f%% off the %.0f allowed (%.0f checks/s)", admitted.Load(), checks.Load(), elapsed.Round(ms), 100*dev, want, float64(checks.Load())/elapsed.Seconds())
	if checks.Load() < int64(2*want) {
		t.Fatalf("only %d checks: not enough demand to test the limit", checks.Load())
	}
	if dev < -0.02 || dev > 0.02 {
		t.Errorf("admitted %.0f, want %.0f ± 2%%", got, want)
	}
}
