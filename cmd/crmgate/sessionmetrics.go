package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/session"
)

// sessionCacheMetrics are the counters of the session manager's cache of
// decoded records (session.cache_entries): a hit ratio that falls while
// evictions climb says the cache is smaller than the sessions in use.
func sessionCacheMetrics(m *session.Manager) []prometheus.Collector {
	counter := func(name, help string, v func(session.CacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(m.CacheStats())) })
	}
	return []prometheus.Collector{
		counter("crmgate_session_cache_hits_total", "Session loads that reused a decoded record (the store was still read).",
			func(s session.CacheStats) uint64 { return s.Hits }),
		counter("crmgate_session_cache_misses_total", "Session loads that decrypted and decoded the stored record.",
			func(s session.CacheStats) uint64 { return s.Misses }),
		counter("crmgate_session_cache_evictions_total", "Decoded session records dropped to stay within session.cache_entries.",
			func(s session.CacheStats) uint64 { return s.Evictions }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "crmgate_session_cache_entries", Help: "Decoded session records held (at most session.cache_entries).",
		}, func() float64 { return float64(m.CacheStats().Entries) }),
	}
}
