package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// replica is one gateway replica: its own Redis client, store and manager.
type replica struct {
	store   *RedisStore
	m       *Manager
	revoked chan Revocation
}

func newReplica(t *testing.T, srv *redisServer, prefix string, clock *fakeClock, keys ...[]byte) *replica {
	t.Helper()
	r := &replica{revoked: make(chan Revocation, 16)}
	// Wired as cmd wires it: the store's revocations reach the manager.
	r.store = NewRedisStore(srv.Client(t), RedisOptions{Prefix: prefix, Now: clock.Now, OnRevoke: func(rv Revocation) {
		r.m.Revoked(rv)
		r.revoked <- rv
	}})
	r.m = newTestManager(t, r.store, clock, keys...)
	if err := r.store.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { r.store.Close() })
	return r
}

func TestRevocationAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	clock := newClock()
	a := newReplica(t, srv, "rev:", clock, testKey("a"))
	b := newReplica(t, srv, "rev:", clock, testKey("a"))
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		revoke func(rec *Record) error
	}{
		{"End", func(rec *Record) error { return a.m.End(ctx, httptest.NewRecorder(), rec.ID()) }},
		{"RevokeUser", func(rec *Record) error { _, err := a.m.RevokeUser(ctx, rec.UserID); return err }},
		{"RevokeAll", func(rec *Record) error { _, err := a.m.RevokeAll(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := aliceRecord(clock.Now())
			cookie := startSession(t, a.m, rec, ID{})
			r := requestWithCookies("__Host-crmgate=" + cookie)
			if _, err := b.m.Load(r); err != nil {
				t.Fatalf("replica b: Load = %v, want the session replica a started", err)
			}
			if !b.m.decoded.has(rec.Hash()) {
				t.Fatal("replica b did not keep the decoded record")
			}
			drain(b.revoked)

			start := time.Now()
			if err := tc.revoke(rec); err != nil {
				t.Fatal(err)
			}
			// The session is gone for replica b at once: no local copies.
			if _, err := b.m.Load(r); !errors.Is(err, ErrNoSession) {
				t.Errorf("replica b: Load after revocation on a = %v, want ErrNoSession", err)
			}
			seen := time.Since(start)
			// And b hears of it over pub/sub, to close what it holds open.
			select {
			case rv := <-b.revoked:
				heard := time.Since(start)
				if !rv.All && !contains(rv.Keys, rec.Hash()) {
					t.Errorf("replica b heard %+v, want %s", rv, rec.Hash())
				}
				if b.m.decoded.has(rec.Hash()) {
					t.Errorf("replica b still holds the revoked session's decoded record")
				}
				t.Logf("revocation on replica a: gone for b after %v, b's local copy dropped after %v", seen, heard)
				if heard > time.Second {
					t.Errorf("replica b heard of the revocation after %v, want within 1s", heard)
				}
			case <-time.After(time.Second):
				t.Errorf("replica b did not hear of the revocation within 1s")
			}
		})
	}
}

func drain(ch chan Revocation) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRefreshOnceAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	clock := newClock()
	a := newReplica(t, srv, "refresh:", clock, testKey("a"))
	b := newReplica(t, srv, "refresh:", clock, testKey("a"))

	rec := aliceRecord(clock.Now())
	rec.Tokens.Expiry = clock.Now().Add(30 * time.Second) // due: refresh_before is 1m
	cookie := startSession(t, a.m, rec, ID{})

	var calls atomic.Int64
	fn := func(ctx context.Context, cur Tokens) (Tokens, error) {
		calls.Add(1)
		// Long enough that every request finds the tokens due meanwhile.
		time.Sleep(100 * time.Millisecond)
		return Tokens{IDToken: "new-id", RefreshToken: "new-refresh", Expiry: clock.Now().Add(time.Hour)}, nil
	}

	const perReplica = 50
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, rep := range []*replica{a, b} {
		for range perReplica {
			wg.Go(func() {
				r := requestWithCookies("__Host-crmgate=" + cookie)
				cur, err := rep.m.Load(r)
				if err != nil {
					t.Errorf("Load: %v", err)
					return
				}
				<-start
				got, err := rep.m.Refresh(r.Context(), cur, fn)
				if err != nil {
					t.Errorf("Refresh: %v", err)
					return
				}
				if got.Tokens.IDToken != "new-id" || got.Tokens.RefreshToken != "new-refresh" {
					t.Errorf("Refresh returned tokens %+v, want the refreshed ones", got.Tokens)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("the refresh function ran %d times for %d concurrent requests on 2 replicas, want exactly 1", n, 2*perReplica)
	}
	got, err := b.m.Load(requestWithCookies("__Host-crmgate=" + cookie))
	if err != nil || got.Tokens.IDToken != "new-id" {
		t.Errorf("stored session after refresh: %v, %v", got, err)
	}
}

func TestRedisTTL(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	ctx := context.Background()
	clock := newClock()
	s := NewRedisStore(client, RedisOptions{Prefix: "ttl:", Now: clock.Now})
	m := newTestManager(t, s, clock, testKey("a"))
	rec := aliceRecord(clock.Now())
	startSession(t, m, rec, ID{})

	// The entry lives until min(idle, absolute) plus the grace.
	pttl := client.PTTL(ctx, "ttl:s:"+rec.Hash()).Val()
	if want := 30*time.Minute + storeGrace; pttl > want || pttl < want-2*time.Second {
		t.Errorf("entry TTL = %v, want about %v", pttl, want)
	}
	for _, k := range []string{"ttl:all", "ttl:u:" + m.ring.active().userKey("alice")} {
		if ttl := client.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 30*time.Minute+storeGrace {
			t.Errorf("index %s TTL = %v, want up to the entry's", k, ttl)
		}
	}
	// Near the absolute deadline the TTL is bounded by it.
	late := aliceRecord(clock.Now())
	late.Created = clock.Now().Add(-12*time.Hour + 10*time.Minute)
	startSession(t, m, late, ID{})
	pttl = client.PTTL(ctx, "ttl:s:"+late.Hash()).Val()
	if want := 10*time.Minute + storeGrace; pttl > want || pttl < want-2*time.Second {
		t.Errorf("entry TTL near the absolute deadline = %v, want about %v", pttl, want)
	}

	// Redis itself forgets an entry at its TTL.
	e := entry(clock, "short", "u", 1)
	e.Expires = clock.Now().Add(150 * time.Millisecond)
	if err := s.Create(ctx, e); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := client.Exists(ctx, "ttl:s:short").Val(); n != 0 {
		t.Errorf("entry still in Redis after its TTL")
	}
}

func TestRedisUnavailableFailsClosed(t *testing.T) {
	srv := startRedis(t)
	clock := newClock()
	s := NewRedisStore(srv.Client(t), RedisOptions{Prefix: "down:", Now: clock.Now})
	m := newTestManager(t, s, clock, testKey("a"))
	rec := aliceRecord(clock.Now())
	cookie := startSession(t, m, rec, ID{})
	r := requestWithCookies("__Host-crmgate=" + cookie)
	ctx := context.Background()

	srv.Stop()
	if _, err := m.Load(r); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Load with Redis down = %v, want ErrUnavailable", err)
	}
	if err := m.Start(ctx, httptest.NewRecorder(), aliceRecord(clock.Now()), ID{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Start with Redis down = %v, want ErrUnavailable", err)
	}
	if err := m.Save(ctx, rec); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Save with Redis down = %v, want ErrUnavailable", err)
	}
	if _, err := m.RevokeUser(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("RevokeUser with Redis down = %v, want ErrUnavailable", err)
	}
	if err := s.Ready(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ready with Redis down = %v, want ErrUnavailable", err)
	}

	// The same client reconnects by itself once Redis is back (empty: this
	// test server keeps nothing on disk).
	srv.Restart(t)
	if _, err := m.Load(r); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load after Redis came back = %v, want ErrNoSession", err)
	}
	cookie = startSession(t, m, aliceRecord(clock.Now()), ID{})
	if _, err := m.Load(requestWithCookies("__Host-crmgate=" + cookie)); err != nil {
		t.Errorf("Load of a session started after reconnecting = %v", err)
	}
}

// roundTrips counts what a client sends: a pipeline is one round trip.
// The handshake of a new connection (HELLO, CLIENT SETINFO) is not counted.
type roundTrips struct{ n atomic.Int64 }

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			h.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func TestRedisRoundTrips(t *testing.T) {
	srv := startRedis(t)
	client := srv.Client(t)
	rt := &roundTrips{}
	client.AddHook(rt)
	clock := newClock()
	m := newTestManager(t, NewRedisStore(client, RedisOptions{Prefix: "rt:", Now: clock.Now}), clock, testKey("a"))
	rec := aliceRecord(clock.Now())
	ctx := context.Background()

	for _, tc := range []struct {
		op   string
		want int64
		fn   func() error
	}{
		{"Start", 1, func() error { return m.Start(ctx, httptest.NewRecorder(), rec, ID{}) }},
		{"Load", 1, func() error {
			_, err := m.Load(requestWithCookies("__Host-crmgate=" + m.codec.Encode(rec.ID())))
			return err
		}},
		{"Save", 1, func() error { return m.Save(ctx, rec) }},
		{"End", 1, func() error { return m.End(ctx, httptest.NewRecorder(), rec.ID()) }},
	} {
		before := rt.n.Load()
		if err := tc.fn(); err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if got := rt.n.Load() - before; got != tc.want {
			t.Errorf("%s took %d round trips, want %d", tc.op, got, tc.want)
		}
	}
}
