package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors of Emit and EmitDurable.
var (
	// ErrRefused: the event cannot be kept (the spool's budget is spent
	// under on_full: refuse, or a strict event cannot be made durable).
	// The gateway answers 503: no audit, no access.
	ErrRefused = errors.New("audit: event refused: the audit spool is full")
	// ErrClosed: the pipeline is closed.
	ErrClosed = errors.New("audit: pipeline closed")
)

// retentionEvery is how often retention runs.
const retentionEvery = time.Hour

// Options are the pipeline's collaborators.
type Options struct {
	// Sinks are further sinks (syslog, HTTP, built by their packages)
	// delivered to next to the file and stdout sinks of the Config.
	// Names must be unique and made of letters, digits, . _ -: each
	// names its spool folder. The pipeline closes them.
	Sinks []Sink
	// Logger receives the pipeline's own failures; nil discards them.
	Logger *slog.Logger
	// Registerer receives the crmgate_audit_* metrics; nil registers
	// nothing.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Version is metadata.product.version; empty means "dev".
	Version string
	// RetryBase and RetryMax bound the backoff between attempts to
	// deliver to a failing sink; zero means 100ms and 30s.
	RetryBase, RetryMax time.Duration
}

// Pipeline takes events and delivers them to every sink, in order, never
// making the caller wait for a sink (see the package comment). Its
// methods are safe for concurrent use. Build it with New, call Start,
// and Close it at shutdown.
type Pipeline struct {
	// spoolLock keeps other processes from replaying the same spool.
	spoolLock  *os.File
	log        *slog.Logger
	now        func() time.Time
	enc        encoder
	lanes      []*lane
	durable    *lane // where EmitDurable waits: the file sink, else the first
	file       *FileSink
	budget     *budget
	refuse     bool
	retention  time.Duration
	retainedAt atomic.Int64 // unix nanos of the last retention run
	retryBase  time.Duration
	retryMax   time.Duration
	closeAfter time.Duration

	stopCtx context.Context
	stop    context.CancelFunc
	started atomic.Bool
	closeMu sync.Once
	closeE  error

	emitted, refused        prometheus.Counter
	fileFsyncs, spoolFsyncs prometheus.Counter
	strict                  prometheus.Histogram
}

var sinkNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// New builds the pipeline for cfg, which must have passed Defaults and
// Validate with its secrets resolved: it opens the file sink (continuing
// its chain) and each sink's spool, whose events from an earlier run are
// delivered first. Nothing is delivered before Start. It fails when there
// is no sink at all, two sinks share a name, a file cannot be opened or the
// metrics cannot be registered; it then closes what it opened, Options.Sinks
// included.
func New(cfg Config, o Options) (p *Pipeline, err error) {
	p = &Pipeline{
		log:        o.Logger,
		now:        o.Now,
		budget:     &budget{max: cfg.Spool.MaxBytes},
		refuse:     cfg.Spool.OnFull != OnFullDrop,
		retention:  cfg.Retention.MaxAge,
		retryBase:  o.RetryBase,
		retryMax:   o.RetryMax,
		closeAfter: cfg.CloseTimeout,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.retryBase <= 0 {
		p.retryBase = 100 * time.Millisecond
	}
	if p.retryMax <= 0 {
		p.retryMax = 30 * time.Second
	}
	if p.closeAfter <= 0 {
		p.closeAfter = DefaultCloseTimeout
	}
	queue := cfg.Queue
	if queue <= 0 {
		queue = DefaultQueue
	}
	p.stopCtx, p.stop = context.WithCancel(context.Background())
	var id [8]byte
	rand.Read(id[:])
	p.enc = encoder{product: o.Version, instance: hex.EncodeToString(id[:]), now: p.now, pseudo: newPseudonymiser(cfg.Pseudonymise.Key.Value())}
	if p.enc.product == "" {
		p.enc.product = "dev"
	}
	p.newMetrics()

	var sinks []Sink
	// The returns below set p to nil: clean up through this copy.
	self := p
	defer func() {
		if err != nil {
			for _, s := range sinks {
				s.Close()
			}
			for _, l := range self.lanes {
				l.spool.closeLocked()
			}
			if self.spoolLock != nil {
				self.spoolLock.Close()
			}
		}
	}()
	if cfg.File.Path != "" {
		f, err := NewFileSink(cfg.File, FileOptions{Now: p.now, Logger: p.log, OnFsync: func() {}})
		if err != nil {
			for _, s := range o.Sinks {
				s.Close()
			}
			return nil, err
		}
		p.file = f
		sinks = append(sinks, f)
	}
	if cfg.Stdout.Enabled {
		sinks = append(sinks, NewStdoutSink(nil))
	}
	sinks = append(sinks, o.Sinks...)
	if len(sinks) == 0 {
		return nil, errors.New("audit: no sink: configure file.path or stdout, or pass sinks")
	}
	if err := os.MkdirAll(cfg.Spool.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	lk, err := lockFile(filepath.Join(cfg.Spool.Dir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	p.spoolLock = lk
	seen := map[string]bool{}
	for _, s := range sinks {
		name := s.Name()
		if !sinkNameRe.MatchString(name) {
			return nil, fmt.Errorf("audit: sink name %q: use 1 to 64 letters, digits, . _ -", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("audit: two sinks are named %q", name)
		}
		seen[name] = true
		sp, err := openSpool(filepath.Join(cfg.Spool.Dir, name), p.budget, func() { p.spoolFsyncs.Inc() })
		if err != nil {
			return nil, fmt.Errorf("audit: spool of sink %s: %w", name, err)
		}
		l := &lane{
			p:     p,
			name:  name,
			sink:  s,
			ring:  make([]item, queue),
			spool: sp,
			wake:  make(chan struct{}, 1),
			done:  make(chan struct{}),
		}
		l.syncer, _ = s.(Syncer)
		l.ticker, _ = s.(ticker)
		l.spooling = !sp.emptyLocked()
		p.laneMetrics(l)
		p.lanes = append(p.lanes, l)
		if s == Sink(p.file) && p.file != nil {
			p.durable = l
		}
	}
	if p.durable == nil {
		p.durable = p.lanes[0]
	}
	if err := p.register(o.Registerer); err != nil {
		return nil, err
	}
	p.retainedAt.Store(p.now().Add(-retentionEvery).UnixNano())
	return p, nil
}

// Start starts one delivery goroutine per sink. Calls after the first do
// nothing.
func (p *Pipeline) Start() {
	if p.started.Swap(true) {
		return
	}
	for _, l := range p.lanes {
		go l.run()
	}
}

// PublicKey returns the public half of the file sink's signing key, what
// Verify needs; nil without a file sink.
func (p *Pipeline) PublicKey() ed25519.PublicKey {
	if p.file == nil {
		return nil
	}
	return p.file.key.Public().(ed25519.PublicKey)
}

// Accepting reports whether events are accepted: false only under
// on_full: refuse while the spool's budget is spent. The gateway answers
// 503 while it is false.
func (p *Pipeline) Accepting() bool {
	return !p.refuse || !p.budget.full()
}

// Emit records e: it encodes it and queues it for every sink, without
// waiting for any. It returns ErrRefused when the event cannot be kept
// (on_full: refuse with the spool's budget spent; it may then have
// reached some sinks) and ErrClosed after Close; under on_full: drop an
// event a sink cannot keep is counted as lost and Emit returns nil.
func (p *Pipeline) Emit(e Event) error {
	_, err := p.emit(&e, nil, false)
	return err
}

// EmitAdmitted is Emit for the event of a request that was admitted while
// the pipeline was Accepting: it is spooled even when the spool's budget
// ran out meanwhile, so that no answered request goes unrecorded. The
// budget is exceeded by at most the requests in flight when it ran out.
func (p *Pipeline) EmitAdmitted(e Event) error {
	_, err := p.emit(&e, nil, true)
	return err
}

// EmitDurable records e like Emit and returns once it is durable on local
// disk: written and fsynced by the file sink, or, when the file sink is
// behind or failing (or there is none), by the spool, unless the spool's
// sinks took it before the fsync came round. Concurrent callers
// share fsyncs. It returns ErrRefused when the event cannot be made
// durable, and ctx's error when ctx ends first (the event stays queued).
func (p *Pipeline) EmitDurable(ctx context.Context, e Event) error {
	start := time.Now()
	w := newWaiter()
	pos, err := p.emit(&e, w, false)
	if err != nil {
		return err
	}
	if pos > 0 {
		err = p.durable.syncSpool(pos)
	} else {
		select {
		case <-w.done:
			err = w.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	p.strict.Observe(time.Since(start).Seconds())
	return nil
}

// emit encodes e and pushes it to every lane; w goes with the durable
// lane's copy. It returns the durable lane's spool position when the
// event went to its spool.
func (p *Pipeline) emit(e *Event, w *waiter, admitted bool) (uint64, error) {
	if !admitted && !p.Accepting() {
		p.refused.Inc()
		return 0, ErrRefused
	}
	b := p.enc.appendEvent(make([]byte, 0, 1024), e)
	var pos uint64
	var firstErr error
	for _, l := range p.lanes {
		it := item{b: b}
		if l == p.durable {
			it.w = w
		}
		at, err := l.push(it, admitted)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if l == p.durable {
			pos = at
		}
	}
	if errors.Is(firstErr, ErrRefused) {
		p.refused.Inc()
	}
	if firstErr == nil {
		p.emitted.Inc()
	}
	return pos, firstErr
}

// recordLoss records an audit.loss event once a sink that lost events
// under on_full: drop takes events again.
func (p *Pipeline) recordLoss(sink string, n uint64, from time.Time) {
	p.log.Error("audit: events were lost", slog.String("sink", sink), slog.Uint64("events", n))
	_ = p.Emit(Event{
		Type:    TypeLoss,
		Message: fmt.Sprintf("%d audit events were lost for sink %s: the spool was full", n, sink),
		Reason:  "spool_full",
		Fields:  []Field{{"sink", sink}, {"lost", n}, {"since", from.UTC().Format(time.RFC3339Nano)}},
	})
}

// maybeRetain runs retention from the file sink's goroutine once an hour.
func (p *Pipeline) maybeRetain(l *lane, now time.Time) {
	if p.retention <= 0 || p.file == nil || Sink(p.file) != l.sink {
		return
	}
	if now.Sub(time.Unix(0, p.retainedAt.Load())) < retentionEvery {
		return
	}
	p.retainedAt.Store(now.UnixNano())
	if _, err := p.ApplyRetention(); err != nil {
		p.log.Error("audit: retention", slog.String("err", err.Error()))
	}
}

// ApplyRetention deletes the file sink's closed segments whose last
// write is older than retention.max_age, and records an
// audit.retention.deleted event for each. The pipeline runs it hourly; it
// does nothing without retention or a file sink.
func (p *Pipeline) ApplyRetention() ([]DeletedSegment, error) {
	if p.retention <= 0 || p.file == nil {
		return nil, nil
	}
	deleted, err := p.file.deleteOlder(p.now().Add(-p.retention))
	for _, d := range deleted {
		_ = p.Emit(Event{
			Type:    TypeRetentionDeleted,
			Message: "audit segment deleted by retention: " + filepath.Base(d.Path),
			Reason:  "retention",
			Fields: []Field{
				{"file", filepath.Base(d.Path)}, {"first_seq", d.FirstSeq}, {"last_seq", d.LastSeq},
				{"bytes", d.Bytes}, {"modified", d.Modified.UTC().Format(time.RFC3339Nano)},
				{"max_age", p.retention.String()},
			},
		})
	}
	return deleted, err
}

func (p *Pipeline) stopped() bool { return p.stopCtx.Err() != nil }

// Close stops taking events, gives the sinks up to close_timeout to take
// what is queued, keeps the rest in the spool for the next start, and
// closes the sinks (the file sink signs its head). Calls after the first
// return the first's result.
func (p *Pipeline) Close() error {
	p.closeMu.Do(func() {
		for _, l := range p.lanes {
			l.mu.Lock()
			l.closed = true
			l.sleeping = true
			l.wakeLocked()
			l.mu.Unlock()
		}
		if p.started.Load() {
			t := time.AfterFunc(p.closeAfter, p.stop)
			for _, l := range p.lanes {
				<-l.done
			}
			t.Stop()
		} else {
			for _, l := range p.lanes {
				l.stop()
			}
		}
		p.stop()
		var errs []error
		for _, l := range p.lanes {
			if err := l.sink.Close(); err != nil {
				errs = append(errs, fmt.Errorf("audit: closing sink %s: %w", l.name, err))
			}
		}
		p.spoolLock.Close()
		p.closeE = errors.Join(errs...)
	})
	return p.closeE
}
