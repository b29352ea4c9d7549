package decisionlog

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchLogger is a logger with the default masks writing to io.Discard,
// its writer running.
func benchLogger(b *testing.B, cfg Config) (*Logger, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	l := newTestLogger(b, cfg, io.Discard, Options{Registerer: reg})
	l.newID = appendUUID
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = l.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; _ = l.Close() })
	return l, reg
}

// BenchmarkLog is the cost on the request path: encoding and masking one
// realistic event (the default masks) and queueing it.
func BenchmarkLog(b *testing.B) {
	l, reg := benchLogger(b, Config{})
	e := Entry{Input: testInput(), Decision: testDecision()}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
	b.StopTimer()
	b.ReportMetric(count(b, reg, ResultDropped)/float64(b.N), "dropped/op")
}

// BenchmarkLogDropped is Log while the queue is full: what an overloaded
// output costs a request.
func BenchmarkLogDropped(b *testing.B) {
	reg := prometheus.NewRegistry()
	l := newTestLogger(b, Config{Queue: 1}, io.Discard, Options{Registerer: reg})
	e := Entry{Input: testInput(), Decision: testDecision()}
	l.Log(e)
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
	b.StopTimer()
	b.ReportMetric(count(b, reg, ResultDropped)/float64(b.N), "dropped/op")
}

// BenchmarkEncode is the encoding alone: without masks, with the default
// masks, and with the default masks plus upserts that add fields.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"no_masks", Config{MaskDefaults: ptr(false)}},
		{"default_masks", Config{}},
		{"default_masks_and_upserts", Config{Upsert: []Upsert{{Path: "/input/request/headers/user-agent", Value: ""}, {Path: "/result/reason", Value: "-"}, {Path: "/input/extra/x", Value: 1}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newTestLogger(b, bc.cfg, nil, Options{})
			l.newID = appendUUID
			e := Entry{Input: testInput(), Decision: testDecision()}
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				buf = l.appendEvent(buf[:0], &e)
			}
		})
	}
}

// BenchmarkMaskTree is the alternative the logger does not take, for
// comparison with BenchmarkEncode/default_masks: encode the input,
// decode it into a tree, mask the tree and encode it again.
func BenchmarkMaskTree(b *testing.B) {
	var c Config
	c.Defaults()
	rules := c.rules()
	in := testInput()
	b.ReportAllocs()
	for b.Loop() {
		raw, _ := json.Marshal(in)
		var v any
		_ = json.Unmarshal(raw, &v)
		out, _, _, _ := refMask(v, rules)
		_, _ = json.Marshal(out)
	}
}
