package apikey

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The `crmgate apikey` command and a running gateway share the key file:
// each sees the other's writes within a second, with and without the
// fsnotify watch.
func TestFileCLIAndGateway(t *testing.T) {
	for _, watch := range []bool{true, false} {
		name := "stat check only"
		if watch {
			name = "watch"
		}
		t.Run(name, func(t *testing.T) {
			path := keyFile(t)
			clock := newClock()
			gwStore := openFile(t, path, FileOptions{})
			if watch {
				if err := gwStore.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			gateway := newManager(t, gwStore, clock, nil)
			ctx := context.Background()

			// The CLI is a short-lived process with its own store.
			cliRun := func(f func(cli *Manager)) {
				cli := newManager(t, openFile(t, path, FileOptions{}), clock, nil)
				f(cli)
				cli.Close()
			}
			var key, id string
			cliRun(func(cli *Manager) {
				k, rec, err := cli.Create(ctx, Spec{Name: "from the CLI"})
				if err != nil {
					t.Fatal(err)
				}
				key, id = k, rec.ID
			})
			took := eventually(t, time.Second, "the gateway accepts a key the CLI created", func() bool {
				_, err := gateway.Verify(ctx, key)
				return err == nil
			})
			t.Logf("create visible after %s", took)

			// The gateway's LastUsed write reaches the file for the CLI.
			gateway.Close()
			cliRun(func(cli *Manager) {
				r, err := cli.Get(ctx, id)
				if err != nil || !r.LastUsed.Equal(clock.Now()) {
					t.Errorf("CLI Get = %+v, %v; want LastUsed %v written by the gateway", r, err, clock.Now())
				}
			})

			cliRun(func(cli *Manager) {
				if err := cli.Revoke(ctx, id); err != nil {
					t.Fatal(err)
				}
			})
			took = eventually(t, time.Second, "a revocation by the CLI takes effect in the gateway", func() bool {
				_, err := gateway.Verify(ctx, key)
				return errors.Is(err, ErrDisabled)
			})
			t.Logf("revocation effective after %s", took)

			cliRun(func(cli *Manager) {
				if err := cli.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
			})
			eventually(t, time.Second, "a deletion by the CLI takes effect in the gateway", func() bool {
				_, err := gateway.Verify(ctx, key)
				return errors.Is(err, ErrUnknown)
			})
		})
	}
}

// Replicas on one Redis: a revocation or rotation on one is in effect on
// the other's very next request.
func TestRedisReplicas(t *testing.T) {
	srv, c1 := startRedis(t)
	c2 := redisClient(t, srv.Addr)
	clock := newClock()
	a := newManager(t, NewRedisStore(c1, RedisOptions{}), clock, nil)
	b := newManager(t, NewRedisStore(c2, RedisOptions{}), clock, nil)
	ctx := context.Background()
	k, rec := create(t, a, Spec{})
	if _, err := b.Verify(ctx, k); err != nil {
		t.Fatalf("Verify on the other replica = %v", err)
	}
	k2, _, err := a.Rotate(ctx, rec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, k); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(rotated out) on the other replica = %v, want ErrMismatch", err)
	}
	if err := a.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(ctx, k2); !errors.Is(err, ErrDisabled) {
		t.Errorf("Verify(revoked) on the other replica = %v, want ErrDisabled", err)
	}
}

// Redis down: Verify fails closed with ErrUnavailable, never accepts; once
// Redis is back (empty, here) the client reconnects by itself.
func TestRedisUnavailable(t *testing.T) {
	srv, c := startRedis(t)
	clock := newClock()
	m := newManager(t, NewRedisStore(c, RedisOptions{}), clock, nil)
	ctx := context.Background()
	k, _ := create(t, m, Spec{})
	srv.Stop()
	if _, err := m.Verify(ctx, k); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Verify with Redis down = %v, want ErrUnavailable", err)
	}
	if _, _, err := m.Create(ctx, Spec{Name: "x"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create with Redis down = %v, want ErrUnavailable", err)
	}
	srv.Restart(t)
	k2, _ := create(t, m, Spec{})
	if _, err := m.Verify(ctx, k2); err != nil {
		t.Errorf("Verify after Redis is back = %v", err)
	}
}

// Get is one round trip, so Verify is too (plus, once a minute per key, a
// background LastUsed write).
func TestRedisOneRoundTrip(t *testing.T) {
	_, c := startRedis(t)
	rt := &roundTrips{}
	c.AddHook(rt)
	clock := newClock()
	m := newManager(t, NewRedisStore(c, RedisOptions{}), clock, nil)
	ctx := context.Background()
	k, _ := create(t, m, Spec{})
	m.Verify(ctx, k)
	m.Close()
	rt.n.Store(0)
	const n = 20
	for range n {
		if _, err := m.Verify(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	m.Verify(ctx, unknownKey(t))
	if got := rt.n.Load(); got != n+1 {
		t.Errorf("%d Verify calls took %d round trips, want %d", n+1, got, n+1)
	}
}
