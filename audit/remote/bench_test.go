package remote

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchBatch is 100 events of about 600 bytes, a typical request event.
func benchBatch() [][]byte {
	batch := make([][]byte, 100)
	for i := range batch {
		batch[i] = event(fmt.Sprintf("0198c2f4-7b1e-7c3a-9d2e-%012d", i), 1+i%5, "http.request",
			"GET /api/contacts/42 by alice@example.com from 203.0.113.7 "+strings.Repeat("é", 150))
	}
	return batch
}

var (
	baselineOnce sync.Once
	baselineNs   float64 // ns per event writing the same bytes to io.Discard
)

// reportVsBaseline reports events/s and the cost per event as a multiple
// of writing the event's bytes to io.Discard, measured in the same run.
func reportVsBaseline(b *testing.B, events int) {
	baselineOnce.Do(func() {
		// Timed by hand: testing.Benchmark cannot run inside a benchmark.
		batch := benchBatch()
		const rounds = 20000
		start := time.Now()
		for range rounds {
			for _, ev := range batch {
				io.Discard.Write(ev)
			}
		}
		baselineNs = float64(time.Since(start).Nanoseconds()) / float64(rounds*len(batch))
	})
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(events)
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	if baselineNs > 0 {
		b.ReportMetric(perEvent/baselineNs, "x_discard")
	}
}

func BenchmarkDiscardBaseline(b *testing.B) {
	batch := benchBatch()
	n := 0
	for b.Loop() {
		for _, ev := range batch {
			io.Discard.Write(ev)
		}
		n += len(batch)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkSyslog(b *testing.B) {
	pki := newTestPKI(b)
	for _, transport := range []string{TransportTLS, TransportTCP} {
		b.Run(transport, func(b *testing.B) {
			var ln net.Listener
			var err error
			if transport == TransportTLS {
				ln, err = tlsListen(pki)
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
			}
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(io.Discard, c); c.Close() }()
				}
			}()
			cfg := SyslogConfig{Address: ln.Addr().String(), Transport: transport}
			if transport == TransportTLS {
				cfg.TLS = pki.clientTLS(false)
			}
			s := newTestSyslog(b, cfg)
			batch := benchBatch()
			n := 0
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			reportVsBaseline(b, n)
		})
	}
}

func tlsListen(pki *testPKI) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return tlsNewListener(ln, pki), nil
}

func BenchmarkHTTP(b *testing.B) {
	pki := newTestPKI(b)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	srv.TLS = pki.serverTLS(false)
	srv.StartTLS()
	defer srv.Close()
	loki := TemplateConfig{Prefix: `{"streams":[{"stream":{"app":"crmgate"},"values":[`, Line: `["{{time_ns}}",{{event_string}}]`, Separator: ",", Suffix: `]}]}`}
	tests := []struct {
		name string
		cfg  HTTPConfig
	}{
		{"ndjson", HTTPConfig{}},
		{"ndjson gzip", HTTPConfig{Gzip: true}},
		{"splunk", HTTPConfig{Format: FormatTemplate, Template: TemplateConfig{Line: `{"time":{{time_s}},"event":{{event}}}`, Separator: "\n"}}},
		{"loki", HTTPConfig{Format: FormatTemplate, Template: loki}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			cfg := tt.cfg
			cfg.URL, cfg.TLS = srv.URL, pki.clientTLS(false)
			s := newTestHTTP(b, cfg)
			batch := benchBatch()
			n := 0
			for b.Loop() {
				if err := s.Write(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			reportVsBaseline(b, n)
		})
	}
}
