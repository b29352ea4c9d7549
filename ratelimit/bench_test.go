package ratelimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/crmgate/crmgate/internal/redistest"
)

// benchConfig has a tier whose buckets take a second to fill, so a key
// checked again within the second keeps its bucket (no churn from the
// eviction of full buckets).
func benchConfig(maxKeys int) Config {
	cfg := testConfig()
	cfg.MaxKeys = maxKeys
	cfg.Tiers["bench"] = Tier{Limit: MaxQuota, Window: time.Second, Burst: MaxQuota}
	return cfg
}

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = KeyFor("user", fmt.Sprintf("user-%d@example.com", i))
	}
	return keys
}

// BenchmarkLocalAllow: the target is at most 1µs a check.
func BenchmarkLocalAllow(b *testing.B) {
	for _, bc := range []struct {
		name          string
		keys, maxKeys int
	}{
		{"one key", 1, 100_000},
		{"10k keys", 10_000, 100_000},
		// Every check a key not seen for long: insert and evict.
		{"new keys", 100_000, 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := NewLocal(benchConfig(bc.maxKeys), nil)
			keys := benchKeys(bc.keys)
			ctx := b.Context()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := l.Allow(ctx, keys[i%len(keys)], "bench"); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkLocalAllowParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		keys int
	}{
		{"one key", 1},
		{"10k keys", 10_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := NewLocal(benchConfig(100_000), nil)
			keys := benchKeys(bc.keys)
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := l.Allow(ctx, keys[i%len(keys)], "bench"); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	}
}

// BenchmarkRedisAllow measures checks against a real redis-server on
// loopback, one at a time and from many goroutines.
func BenchmarkRedisAllow(b *testing.B) {
	srv := redistest.Start(b)
	client, _ := redisClient(b, srv.Addr)
	lim := NewRedis(benchConfig(100_000), client, nil)
	keys := benchKeys(10_000)
	b.Run("serial", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := lim.Allow(ctx, keys[i%len(keys)], "bench"); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("parallel", func(b *testing.B) {
		ctx := b.Context()
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := lim.Allow(ctx, keys[i%len(keys)], "bench"); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
}
