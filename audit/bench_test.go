package audit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// discardSink takes everything.
type discardSink struct{}

func (discardSink) Name() string                          { return "discard" }
func (discardSink) Write(context.Context, [][]byte) error { return nil }
func (discardSink) Close() error                          { return nil }

// BenchmarkEmit is the cost on the request path: encoding a realistic
// request event and queueing it, with a sink that keeps up (discard) and
// with the file sink hashing and writing behind.
func BenchmarkEmit(b *testing.B) {
	for _, bc := range []struct {
		name string
		file bool
	}{{"discard", false}, {"file", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b)
			var sinks []Sink
			if !bc.file {
				cfg.File.Path = ""
				sinks = append(sinks, discardSink{})
			}
			p, reg := newPipeline(b, cfg, sinks...)
			p.Start()
			e := reqEvent(1)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Emit(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			p.Close()
			b.ReportMetric(metric(b, reg, "crmgate_audit_events_spooled_total")/float64(b.N), "spooled/op")
		})
	}
}

// BenchmarkEmitParallel is Emit from every core at once.
func BenchmarkEmitParallel(b *testing.B) {
	cfg := testConfig(b)
	cfg.File.Path = ""
	p, _ := newPipeline(b, cfg, discardSink{})
	p.Start()
	defer p.Close()
	e := reqEvent(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.Emit(e)
		}
	})
}

// BenchmarkFileThroughput is sustained delivery into the file sink (hash
// chain, checkpoints, one write per batch): buffered events from 64
// goroutines with Emit, then strict ones with EmitDurable (each waits for
// an fsync, shared by the callers of a batch), in the same run. It
// reports events/s of each, and their ratio.
func BenchmarkFileThroughput(b *testing.B) {
	const callers = 64
	run := func(b *testing.B, strict bool) (float64, float64) {
		cfg := testConfig(b)
		p, reg := newPipeline(b, cfg)
		p.Start()
		e := reqEvent(1)
		n := b.N
		per := (n + callers - 1) / callers
		start := time.Now()
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for range per {
					var err error
					if strict {
						err = p.EmitDurable(context.Background(), e)
					} else {
						err = p.Emit(e)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := p.Close(); err != nil { // delivers all that is queued
			b.Fatal(err)
		}
		el := time.Since(start)
		return float64(per*callers) / el.Seconds(), metric(b, reg, "crmgate_audit_fsyncs_total")
	}
	var buffered, strict, fsyncs float64
	b.Run("buffered", func(b *testing.B) {
		buffered, _ = run(b, false)
		b.ReportMetric(buffered, "events/s")
	})
	b.Run("strict", func(b *testing.B) {
		strict, fsyncs = run(b, true)
		b.ReportMetric(strict, "events/s")
		b.ReportMetric(fsyncs, "fsyncs")
	})
	if strict > 0 {
		b.Logf("buffered %.0f events/s, strict %.0f events/s (64 callers, %.0f fsyncs in the last run): buffered/strict = %.1f", buffered, strict, fsyncs, buffered/strict)
	}
}

// BenchmarkVerify is the verifier's speed over a log.
func BenchmarkVerify(b *testing.B) {
	cfg := testConfig(b)
	p, _ := newPipeline(b, cfg)
	p.Start()
	for i := range 20000 {
		p.Emit(reqEvent(i))
	}
	p.Close()
	files, _ := Segments(cfg.File.Path)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(files, p.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(20000*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
