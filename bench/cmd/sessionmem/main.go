// Command sessionmem measures how much memory crmgate's sessions take as
// their number grows: it creates N signed-in sessions through the session
// manager, the way the gateway does at the end of a sign-in, in the
// memory store and in Redis, and prints one JSON line per point: the Go
// heap in use after a collection (memory store: the store and the
// manager's decoded-record cache; Redis: the cache alone, kept in the
// gateway) and Redis's used_memory.
//
// It owns the measurement only; the session package is used as it is.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/crmgate/crmgate/bench/internal/loopback"
	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// row is one point of the curve.
type row struct {
	Store    string  `json:"store"`
	Sessions int     `json:"sessions"`
	MB       float64 `json:"mb"`
	// GatewayMB is the gateway-side heap for the Redis store.
	GatewayMB float64 `json:"gateway_mb,omitempty"`
	Seconds   float64 `json:"seconds"`
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sessionmem:", err)
		os.Exit(1)
	}
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 10_000_000 {
			return nil, fmt.Errorf("count %q: 1 to 10,000,000", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(stdout io.Writer) error {
	counts := flag.String("counts", "1000,10000,100000", "session counts for the memory store, ascending")
	redisAddr := flag.String("redis", "", "host:port of a Redis server on loopback (its data is flushed); empty: memory store only")
	redisCounts := flag.String("redis-counts", "1000,10000,100000", "session counts for Redis, ascending")
	asJSON := flag.Bool("json", false, "one JSON object per line")
	parallel := flag.Int("parallel", 1, "sign-ins in flight at once while filling a store (the store's memory is the same; Redis fills faster)")
	flag.Parse()
	if *parallel < 1 || *parallel > 256 {
		return fmt.Errorf("-parallel %d: 1 to 256", *parallel)
	}
	mem, err := parseCounts(*counts)
	if err != nil {
		return err
	}
	rc, err := parseCounts(*redisCounts)
	if err != nil {
		return err
	}
	out := func(r row) {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(stdout, string(b))
			return
		}
		fmt.Fprintf(stdout, "%-6s %9d sessions %9.1f MB (gateway %0.1f MB) in %.1fs\n", r.Store, r.Sessions, r.MB, r.GatewayMB, r.Seconds)
	}
	for _, n := range mem {
		r, err := measure(n, nil, *parallel)
		if err != nil {
			return err
		}
		out(r)
	}
	if *redisAddr == "" {
		return nil
	}
	if err := loopback.Check(*redisAddr); err != nil {
		return fmt.Errorf("-redis: %w", err)
	}
	client := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: max(64, *parallel)})
	defer client.Close()
	for _, n := range rc {
		r, err := measure(n, client, *parallel)
		if err != nil {
			return err
		}
		out(r)
	}
	return nil
}

// heapMB is the heap in use after a full collection.
func heapMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// discard is a ResponseWriter for the session cookie nobody reads.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// record is a signed-in user's session as a sign-in through an OpenID
// provider leaves it: claims, roles, and the provider's tokens (a signed
// ID token and an opaque refresh token; the access token is not kept).
func record(i int) *session.Record {
	jwt := func(n int) string { return strings.Repeat("x", n) }
	return &session.Record{
		UserID: "user" + strconv.Itoa(i), Email: "user" + strconv.Itoa(i) + "@example.com",
		Roles: []string{"sales", "support"}, ACR: "pwd", AMR: []string{"pwd"},
		AuthTime: time.Now(),
		Claims:   map[string]any{"name": "User " + strconv.Itoa(i), "preferred_username": "user" + strconv.Itoa(i)},
		Tokens: session.Tokens{
			IDToken: jwt(850), RefreshToken: jwt(43),
			Expiry: time.Now().Add(time.Hour),
		},
		Fingerprint: map[string]string{"ja4": "t13d1516h2_8daaf6152771_02713d6af862", "user_agent": "firefox/140", "ip_prefix": "127.0.0.0/24"},
	}
}

// measure creates n sessions in a fresh store, parallel at a time, and
// reports the memory.
func measure(n int, client *redis.Client, parallel int) (row, error) {
	ctx := context.Background()
	before := heapMB()
	cfg := session.Config{Keys: []secret.Ref{secret.FromValue([]byte("bench-session-key-0123456789abcdef0123456789abcdef"))}, MaxEntries: n + 1}
	cfg.Defaults()
	var store session.Store
	r := row{Store: "memory", Sessions: n}
	if client != nil {
		if err := client.FlushDB(ctx).Err(); err != nil {
			return row{}, err
		}
		rs := session.NewRedisStore(client, session.RedisOptions{})
		defer rs.Close()
		store, r.Store = rs, "redis"
	} else {
		store = session.NewMemoryStore(session.MemoryOptions{MaxEntries: n + 1})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := session.New(cfg, store, log, time.Now)
	if err != nil {
		return row{}, err
	}
	start := time.Now()
	var g errgroup.Group
	for p := range parallel {
		g.Go(func() error {
			w := &discard{h: http.Header{}}
			for i := p; i < n; i += parallel {
				if err := m.Start(ctx, w, record(i), session.ID{}); err != nil {
					return fmt.Errorf("session %d: %w", i, err)
				}
				clear(w.h)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return row{}, err
	}
	r.Seconds = time.Since(start).Seconds()
	gw := heapMB() - before
	if client == nil {
		r.MB = gw
	} else {
		r.GatewayMB = gw
		info, err := client.Info(ctx, "memory").Result()
		if err != nil {
			return row{}, err
		}
		used, err := usedMemory(info)
		if err != nil {
			return row{}, err
		}
		r.MB = used / (1 << 20)
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(store)
	return r, nil
}

// usedMemory reads used_memory from INFO memory.
func usedMemory(info string) (float64, error) {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.New("INFO memory: no used_memory")
}
