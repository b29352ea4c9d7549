package decisionlog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an event, the result label of
// crmgate_policy_decision_log_events_total.
const (
	// ResultWritten: the event reached the output.
	ResultWritten = "written"
	// ResultDropped: the queue was full (or the logger stopped), so the
	// event was not logged.
	ResultDropped = "dropped"
	// ResultError: writing the event to the output failed.
	ResultError = "error"
)

const (
	// pollInterval is how often the writer takes what is queued; the
	// queue's capacity per interval bounds the events per second.
	pollInterval = 5 * time.Millisecond
	// flushInterval bounds how long a written event waits in the buffer.
	flushInterval = 100 * time.Millisecond
	// bufferSize is the output buffer; a longer line is written on its
	// own.
	bufferSize = 64 << 10
	// closeTimeout bounds how long Close waits for the output.
	closeTimeout = 5 * time.Second
	// maxPooled bounds the buffers kept for reuse, so that one huge
	// event does not pin its memory.
	maxPooled = 64 << 10
)

// ErrClosed is returned by Run after Close, or when Run is called twice.
var ErrClosed = errors.New("decision log closed")

// Options are the logger's collaborators.
type Options struct {
	// Logger receives the logger's own failures (an output that cannot
	// be written); nil discards them.
	Logger *slog.Logger
	// Registerer receives crmgate_policy_decision_log_events_total; nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Now stamps entries without a Time; nil means time.Now.
	Now func() time.Time
	// Version is the labels' version: the gateway's version; empty means
	// "dev".
	Version string
	// InstanceID is the labels' id, naming this gateway process as OPA
	// names its instance; empty means a random UUID made by New.
	InstanceID string
	// Bundle names the policy set in the events' bundles; empty means
	// "crmgate".
	Bundle string
}

// Logger writes one decision log event per logged decision, in OPA's
// decision log event format, one JSON line each, with sensitive fields
// masked.
//
// Log encodes and queues; one goroutine (Run) writes. When the queue is
// full, Log drops the event and counts it: the request path never waits
// for the decision log. The audit log, not this one, is the durable record
// of what happened.
//
// A nil *Logger, and one whose output is off, logs nothing. Its methods
// are safe for concurrent use.
type Logger struct {
	log            *slog.Logger
	now            func() time.Time
	mask           masker
	includeAllowed bool
	labelsJSON     []byte
	bundleJSON     []byte
	newID          func(dst []byte) []byte
	paths          sync.Map // entrypoint → JSON string of its path
	// lines holds *line buffers, states *encodeState scratch space.
	lines, states sync.Pool

	written, dropped, failed prometheus.Counter

	// queue is nil when the output is off.
	queue chan *line

	// mu orders Log's sends before the drain: after stopped is set, no
	// event enters the queue.
	mu      sync.RWMutex
	stopped bool
	running bool
	closing chan struct{}
	runDone chan struct{}
	close   sync.Once
	// closeTimeout is closeTimeout; tests shorten it.
	closeTimeout time.Duration

	// wmu guards the output.
	wmu     sync.Mutex
	path    string   // file path; "" for stdout and stderr
	file    *os.File // nil for stdout and stderr
	out     io.Writer
	w       *bufio.Writer
	pending int // events in w not yet flushed
	failing bool
}

// line is one encoded event.
type line struct{ b []byte }

func (l *Logger) putLine(ln *line) {
	if cap(ln.b) <= maxPooled {
		ln.b = ln.b[:0]
		l.lines.Put(ln)
	}
}

// New returns a logger for cfg, which must have passed Defaults and
// Validate. It opens the output file (append-only, created with mode 0600)
// so that a path that cannot be written stops the start; nothing is
// written until Run. It fails when the file cannot be opened or the
// metrics cannot be registered.
func New(cfg Config, o Options) (*Logger, error) {
	mask, errs := compileRules(cfg.rules())
	if len(errs) > 0 {
		return nil, fmt.Errorf("decision log: %w", errors.Join(errs...))
	}
	l := &Logger{
		log:            o.Logger,
		now:            o.Now,
		mask:           mask,
		includeAllowed: enabled(cfg.IncludeAllowed),
		newID:          appendUUID,
		closing:        make(chan struct{}),
		runDone:        make(chan struct{}),
		closeTimeout:   closeTimeout,
	}
	l.lines.New = func() any { return &line{b: make([]byte, 0, 2048)} }
	l.states.New = newEncodeState
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.labelsJSON = labelsJSON(cfg.Labels, o)
	bundle := o.Bundle
	if bundle == "" {
		bundle = "crmgate"
	}
	l.bundleJSON = appendString(nil, bundle)

	switch cfg.Output {
	case "", OutputOff:
	case OutputStdout:
		l.out = os.Stdout
	case OutputStderr:
		l.out = os.Stderr
	default:
		f, err := openFile(cfg.Output)
		if err != nil {
			return nil, err
		}
		l.path, l.file, l.out = cfg.Output, f, f
	}
	if l.out != nil {
		queue := cfg.Queue
		if queue <= 0 {
			queue = DefaultQueue
		}
		l.w = bufio.NewWriterSize(l.out, bufferSize)
		l.queue = make(chan *line, queue)
	}

	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmgate_policy_decision_log_events_total",
		Help: "Decision log events, by result: written, dropped (the queue was full), error (the output failed).",
	}, []string{"result"})
	l.written = events.WithLabelValues(ResultWritten)
	l.dropped = events.WithLabelValues(ResultDropped)
	l.failed = events.WithLabelValues(ResultError)
	if o.Registerer != nil {
		if err := o.Registerer.Register(events); err != nil {
			if l.file != nil {
				_ = l.file.Close()
			}
			return nil, fmt.Errorf("decision log metrics: %w", err)
		}
	}
	return l, nil
}

// labelsJSON is the event's labels object: Config.Labels, id and version,
// in key order.
func labelsJSON(cfgLabels map[string]string, o Options) []byte {
	labels := maps.Clone(cfgLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["id"] = o.InstanceID
	if labels["id"] == "" {
		id := appendUUID(nil)
		labels["id"] = string(id[1 : len(id)-1])
	}
	labels["version"] = o.Version
	if labels["version"] == "" {
		labels["version"] = "dev"
	}
	b := []byte{'{'}
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, labels[k])
	}
	return append(b, '}')
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	return f, nil
}

// Log queues the event of e and returns at once; it never blocks on the
// output. It masks a copy of the input (e.Input is not changed) and drops
// the event, counting it, when the queue is full or the logger has
// stopped. With include_allowed false, allowed decisions are skipped.
func (l *Logger) Log(e Entry) {
	if l == nil || l.queue == nil || (!l.includeAllowed && e.Decision.Allow) {
		return
	}
	if len(l.queue) == cap(l.queue) {
		// Shed the encoding too while the output is behind.
		l.dropped.Inc()
		return
	}
	ln := l.lines.Get().(*line)
	ln.b = l.appendEvent(ln.b[:0], &e)
	l.mu.RLock()
	queued := false
	if !l.stopped {
		select {
		case l.queue <- ln:
			queued = true
		default:
		}
	}
	l.mu.RUnlock()
	if !queued {
		l.dropped.Inc()
		l.putLine(ln)
	}
}

// Run writes queued events until ctx ends or Close is called, flushing
// the output at least every 100ms. It then stops the logger (later events
// are dropped), writes every event still queued, flushes and returns nil.
// It returns ErrClosed at once after Close or when another Run is active.
// Close the logger after Run returns.
func (l *Logger) Run(ctx context.Context) error {
	if l == nil {
		<-ctx.Done()
		return nil
	}
	l.mu.Lock()
	if l.stopped || l.running {
		l.mu.Unlock()
		return ErrClosed
	}
	l.running = true
	l.mu.Unlock()
	defer close(l.runDone)
	if l.queue == nil {
		select {
		case <-ctx.Done():
		case <-l.closing:
		}
		l.stop()
		return nil
	}

	// The writer polls rather than receiving each event as it comes: a
	// send to a waiting receiver would wake this goroutine once per
	// event, at the sender's expense, on the request path.
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-t.C:
		case <-ctx.Done():
			l.stop()
			l.drain()
			return nil
		case <-l.closing:
			l.drain()
			return nil
		}
		l.wmu.Lock()
		for n := len(l.queue); n > 0; n-- {
			l.writeLocked(<-l.queue)
		}
		if tick%int(flushInterval/pollInterval) == 0 {
			l.flushLocked()
		}
		l.wmu.Unlock()
	}
}

// stop makes every later Log drop its event.
func (l *Logger) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
}

// drain writes what is queued and flushes. Call it after stop.
func (l *Logger) drain() {
	if l.queue == nil {
		return
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for {
		select {
		case ln := <-l.queue:
			l.writeLocked(ln)
		default:
			l.flushLocked()
			return
		}
	}
}

// Close stops the logger, writes every queued event (waiting for Run to
// do so if it is running), flushes and closes the output file. Later
// events are dropped. It waits at most 5 seconds: an output that blocks
// longer (a stalled pipe) loses what is queued, the file stays open, and
// Close says so. Calls after the first return nil.
//
// Run the logger on its own goroutine and call Close at shutdown: Run
// itself returns only once its output has taken every queued event.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	var err error
	l.close.Do(func() {
		l.mu.Lock()
		l.stopped = true
		running := l.running
		l.mu.Unlock()
		close(l.closing)
		done := l.runDone
		if !running {
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				l.drain()
			}()
			done = drained
		}
		t := time.NewTimer(l.closeTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			err = fmt.Errorf("decision log: the output blocked for %s; %d queued events are not written", l.closeTimeout, len(l.queue))
			return
		}
		l.wmu.Lock()
		defer l.wmu.Unlock()
		if l.file != nil {
			err = l.file.Close()
			l.file = nil
		}
	})
	return err
}

// Reopen flushes the output and opens the file again by its path, for
// log rotation (call it on SIGHUP after the file was moved away). On
// failure the current file stays in use. Without a file output it does
// nothing.
func (l *Logger) Reopen() error {
	if l == nil {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.file == nil {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.flushLocked()
	old := l.file
	l.file, l.out = f, f
	l.w.Reset(f)
	if err := old.Close(); err != nil {
		l.log.Warn("decision log: closing the previous file", slog.String("path", l.path), slog.String("err", err.Error()))
	}
	return nil
}

// writeLocked buffers one event; a line that does not fit in what is left
// of the buffer first flushes it, so lines reach the output whole.
func (l *Logger) writeLocked(ln *line) {
	defer l.putLine(ln)
	if len(ln.b) > l.w.Available() && l.w.Buffered() > 0 {
		l.flushLocked()
	}
	if _, err := l.w.Write(ln.b); err != nil {
		l.failLocked(err, l.pending+1)
		return
	}
	l.pending++
}

func (l *Logger) flushLocked() {
	if l.w.Buffered() == 0 && l.pending == 0 {
		return
	}
	if err := l.w.Flush(); err != nil {
		l.failLocked(err, l.pending)
		return
	}
	l.written.Add(float64(l.pending))
	l.pending = 0
	if l.failing {
		l.failing = false
		l.log.Info("decision log: writing again", slog.String("output", l.name()))
	}
}

// failLocked counts n events lost to err and resets the buffer, whose
// error would otherwise stick. It reports the first failure of a run of
// them.
func (l *Logger) failLocked(err error, n int) {
	l.failed.Add(float64(n))
	l.pending = 0
	l.w.Reset(l.out)
	if !l.failing {
		l.failing = true
		l.log.Error("decision log: cannot write; events are lost until it can", slog.String("output", l.name()), slog.String("err", err.Error()))
	}
}

func (l *Logger) name() string {
	switch {
	case l.path != "":
		return l.path
	case l.out == os.Stderr:
		return OutputStderr
	}
	return OutputStdout
}
