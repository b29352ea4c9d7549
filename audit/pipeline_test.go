package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func newPipeline(t testing.TB, cfg Config, sinks ...Sink) (*Pipeline, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := New(cfg, Options{Sinks: sinks, Registerer: reg, RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func metric(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

func wantMessages(t *testing.T, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("the sink took %d events, want %d", len(got), n)
	}
	for i, m := range got {
		if want := "m" + itoa(i); m != want {
			t.Fatalf("event %d is %q, want %q (order or duplicates)", i, m, want)
		}
	}
}

// Events reach every sink in order, and the file verifies after Close.
func TestPipelineOrder(t *testing.T) {
	cfg := testConfig(t)
	mem := &memSink{name: "mem"}
	p, _ := newPipeline(t, cfg, mem)
	p.Start()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				if err := p.Emit(Event{Type: TypeAlert, Message: fmt.Sprintf("g%d-%d", g, i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Each goroutine's events stay in its order.
	last := map[string]int{}
	for _, m := range mem.messages(t) {
		var g, i int
		fmt.Sscanf(m, "g%d-%d", &g, &i)
		k := fmt.Sprint(g)
		if prev, ok := last[k]; ok && i != prev+1 {
			t.Fatalf("goroutine %d: event %d after %d", g, i, prev)
		}
		last[k] = i
	}
	if mem.count() != 2000 || !mem.closed.Load() {
		t.Fatalf("mem took %d events (closed %v), want 2000", mem.count(), mem.closed.Load())
	}
	files, _ := Segments(cfg.File.Path)
	r, err := Verify(files, p.PublicKey())
	if err != nil || r.Events != 2000 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
	if err := p.Emit(Event{Type: TypeAlert}); !errors.Is(err, ErrClosed) {
		t.Errorf("Emit after Close = %v, want ErrClosed", err)
	}
}

// A sink that fails for a while gets every event exactly once and in
// order once it is back, from the spool; the other sinks are not held up.
func TestPipelineSpoolReplay(t *testing.T) {
	cfg := testConfig(t)
	cfg.Queue = 16
	mem := &memSink{name: "siem"}
	mem.failing.Store(true)
	p, reg := newPipeline(t, cfg, mem)
	p.Start()
	for i := range 1000 {
		if err := p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the file sink to take every event", func() bool { return metric(t, reg, "crmgate_audit_events_delivered_total", "sink", "file") == 1000 })
	waitFor(t, "retries", func() bool { return mem.writes.Load() > 5 })
	if got := metric(t, reg, "crmgate_audit_events_spooled_total", "sink", "siem"); got != 1000 {
		t.Errorf("spooled = %v, want 1000", got)
	}
	mem.failing.Store(false)
	waitFor(t, "the replay", func() bool { return mem.count() >= 1000 })
	// New events after the replay come after it.
	for i := 1000; i < 1100; i++ {
		p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i)})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantMessages(t, mem.messages(t), 1100)
	if got := metric(t, reg, "crmgate_audit_events_replayed_total", "sink", "siem"); got < 1000 {
		t.Errorf("replayed = %v, want at least 1000", got)
	}
	if got := metric(t, reg, "crmgate_audit_spool_bytes"); got != 0 {
		t.Errorf("spool bytes after the replay = %v, want 0", got)
	}
}

// Events a sink could not take before shutdown are delivered, in order
// and before new ones, after the next start.
func TestPipelineSpoolSurvivesRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.CloseTimeout = 50 * time.Millisecond
	mem := &memSink{name: "siem"}
	mem.failing.Store(true)
	p, _ := newPipeline(t, cfg, mem)
	p.Start()
	for i := range 300 {
		p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i)})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	mem2 := &memSink{name: "siem"}
	p2, _ := newPipeline(t, cfg, mem2)
	p2.Start()
	for i := 300; i < 350; i++ {
		p2.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i)})
	}
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	wantMessages(t, mem2.messages(t), 350)
}

// No audit, no access: with the spool's budget spent under on_full:
// refuse, Emit refuses and Accepting is false, until the sink is back.
func TestPipelineRefuseWhenSpoolFull(t *testing.T) {
	cfg := testConfig(t)
	cfg.File.Path = ""
	cfg.Queue = 4
	cfg.Spool.MaxBytes = minSpoolBytes
	mem := &memSink{name: "siem"}
	mem.failing.Store(true)
	p, reg := newPipeline(t, cfg, mem)
	p.Start()
	defer p.Close()
	big := string(make([]byte, 8<<10))
	var refused int
	for i := range 400 {
		if err := p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i), Fields: []Field{{"pad", big}}}); errors.Is(err, ErrRefused) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused == 0 || p.Accepting() {
		t.Fatalf("refused %d events, Accepting %v; want refusals and false", refused, p.Accepting())
	}
	if got := metric(t, reg, "crmgate_audit_events_refused_total"); got != float64(refused) {
		t.Errorf("refused metric = %v, want %d", got, refused)
	}
	if err := p.EmitDurable(context.Background(), Event{Type: TypeAlert}); !errors.Is(err, ErrRefused) {
		t.Errorf("EmitDurable with the spool full = %v, want ErrRefused", err)
	}
	// The event of a request admitted before the budget ran out is kept
	// all the same: an answered request is never unrecorded.
	if err := p.EmitAdmitted(Event{Type: TypeHTTPRequest, Message: "admitted", Fields: []Field{{"pad", big}}}); err != nil {
		t.Errorf("EmitAdmitted with the spool full = %v", err)
	}
	mem.failing.Store(false)
	waitFor(t, "the spool to drain", p.Accepting)
	if err := p.Emit(Event{Type: TypeAlert, Message: "after"}); err != nil {
		t.Errorf("Emit after the drain = %v", err)
	}
	waitFor(t, "delivery", func() bool { return mem.count() == 400-refused+2 })
}

// Two gateways never share a log or a spool: the second is refused while
// the first runs, and may start once it stopped.
func TestPipelineLocksItsFiles(t *testing.T) {
	cfg := testConfig(t)
	p, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("a second pipeline on the same files: %v", err)
	}
	other := cfg
	other.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	if _, err := New(other, Options{}); err == nil || !strings.Contains(err.Error(), "audit.log.lock") {
		t.Errorf("a second pipeline on the same file, another spool: %v", err)
	}
	p.Start()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p2, err := New(cfg, Options{})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	p2.Start()
	p2.Close()
}

// Under on_full: drop the gateway keeps serving; lost events are counted
// and an audit.loss event follows once delivery resumes.
func TestPipelineDropCountsLoss(t *testing.T) {
	cfg := testConfig(t)
	// The file sink keeps up within its queue; the failing sink's
	// events fill the shared spool.
	cfg.Queue = 1024
	cfg.Spool.MaxBytes = minSpoolBytes
	cfg.Spool.OnFull = OnFullDrop
	mem := &memSink{name: "siem"}
	mem.failing.Store(true)
	p, reg := newPipeline(t, cfg, mem)
	p.Start()
	big := string(make([]byte, 8<<10))
	for i := range 400 {
		if err := p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i), Fields: []Field{{"pad", big}}}); err != nil {
			t.Fatalf("Emit under drop = %v, want nil", err)
		}
	}
	lost := metric(t, reg, "crmgate_audit_events_lost_total", "sink", "siem")
	if lost == 0 || !p.Accepting() {
		t.Fatalf("lost = %v, Accepting %v; want losses and true", lost, p.Accepting())
	}
	mem.failing.Store(false)
	waitFor(t, "the loss event", func() bool {
		for _, m := range mem.messages(t) {
			if m == fmt.Sprintf("%d audit events were lost for sink siem: the spool was full", int(lost)) {
				return true
			}
		}
		return false
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := mem.count(); got != 400-int(lost)+1 {
		t.Errorf("siem took %d events, want %d kept + 1 loss event", got, 400-int(lost))
	}
	// The file sink lost nothing and recorded the loss too.
	files, _ := Segments(cfg.File.Path)
	if r, err := Verify(files, p.PublicKey()); err != nil || r.Events != 401 {
		t.Fatalf("Verify = %+v, %v; want 401 events", r, err)
	}
}

// EmitDurable returns after an fsync, and concurrent strict callers share
// fsyncs (group commit).
func TestEmitDurableGroupCommit(t *testing.T) {
	cfg := testConfig(t)
	p, reg := newPipeline(t, cfg)
	p.Start()
	const callers, each = 64, 20
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				if err := p.EmitDurable(context.Background(), Event{Type: TypeAlert, Message: fmt.Sprint(g, "-", i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	fsyncs := metric(t, reg, "crmgate_audit_fsyncs_total")
	if fsyncs == 0 || fsyncs >= callers*each/4 {
		t.Errorf("%v fsyncs for %d strict events, want shared fsyncs", fsyncs, callers*each)
	}
	t.Logf("%d strict events, %v fsyncs", callers*each, fsyncs)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := Segments(cfg.File.Path)
	if r, err := Verify(files, p.PublicKey()); err != nil || r.Events != callers*each {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
}

// Without a sink that can fsync, EmitDurable is durable in the spool, and
// so it is while the file sink fails.
func TestEmitDurableSpool(t *testing.T) {
	cfg := testConfig(t)
	cfg.File.Path = ""
	mem := &memSink{name: "siem"}
	p, reg := newPipeline(t, cfg, mem)
	p.Start()
	if err := p.EmitDurable(context.Background(), Event{Type: TypeAlert, Message: "m0"}); err != nil {
		t.Fatal(err)
	}
	// The fsync is counted after its waiters are released. A sink that
	// took the event before the fsync ran emptied the spool first: the
	// event is then delivered, and there is nothing left to fsync.
	waitFor(t, "the spool fsync to be counted, or the event delivered", func() bool {
		return metric(t, reg, "crmgate_audit_fsyncs_total", "target", "spool") >= 1 || mem.count() >= 1
	})
	p.Emit(Event{Type: TypeAlert, Message: "m1"})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantMessages(t, mem.messages(t), 2)
}

// Close delivers what is queued before it returns.
func TestCloseFlushes(t *testing.T) {
	cfg := testConfig(t)
	mem := &memSink{name: "mem"}
	p, _ := newPipeline(t, cfg, mem)
	p.Start()
	for i := range 5000 {
		p.Emit(Event{Type: TypeAlert, Message: "m" + itoa(i)})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	wantMessages(t, mem.messages(t), 5000)
	files, _ := Segments(cfg.File.Path)
	if r, err := Verify(files, p.PublicKey()); err != nil || r.Events != 5000 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
}

// Retention deletes old closed segments and records it in the chain.
func TestRetention(t *testing.T) {
	cfg := testConfig(t)
	cfg.File.MaxSize = 4096
	cfg.Retention.MaxAge = 48 * time.Hour
	clock := newClock()
	p, err := New(cfg, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p.Start()
	for i := range 40 {
		p.EmitDurable(context.Background(), reqEvent(i))
	}
	before, _ := Segments(cfg.File.Path)
	clock.Add(72 * time.Hour)
	// Segment modification times are real time: age them.
	for _, f := range before[:len(before)-1] {
		osChtimes(t, f, clock.Now().Add(-60*time.Hour))
	}
	deleted, err := p.ApplyRetention()
	if err != nil || len(deleted) == 0 {
		t.Fatalf("ApplyRetention = %v, %v", deleted, err)
	}
	p.Close()
	files, _ := Segments(cfg.File.Path)
	r, err := Verify(files, p.PublicKey())
	if err != nil || r.FirstSeq != deleted[len(deleted)-1].LastSeq+1 {
		t.Fatalf("Verify after retention = %+v, %v", r, err)
	}
}
