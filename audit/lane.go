package audit

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	// maxBatch bounds the events of one Write.
	maxBatch = 1024
	// tickEvery is how often the worker runs its sink's periodic work.
	tickEvery = time.Second
	// attemptTimeout bounds one Write.
	attemptTimeout = 30 * time.Second
)

// item is one queued event; w is set for the durable lane's copy of an
// EmitDurable event.
type item struct {
	b []byte
	w *waiter
}

// waiter is an EmitDurable caller waiting for its event to be durable.
type waiter struct {
	done chan struct{}
	once sync.Once
	err  error
}

func newWaiter() *waiter { return &waiter{done: make(chan struct{})} }

func (w *waiter) finish(err error) {
	w.once.Do(func() { w.err = err; close(w.done) })
}

// lane is one sink's queue, spool and delivery goroutine.
//
// Invariant: while spooling is false the spool is empty and the sink's
// undelivered events are all in ring, oldest first; while it is true the
// ring is empty and they are all in the spool. Emit moves the ring into
// the spool when the ring is full; the worker does when the sink fails.
// The worker goes back to the ring once it has read the spool to its end.
type lane struct {
	p      *Pipeline
	name   string
	sink   Sink
	syncer Syncer
	ticker ticker

	mu       sync.Mutex
	ring     []item
	head, n  int
	spooling bool
	spool    *spool
	gen      uint64 // counts moves of the ring into the spool
	inflight int    // ring events the worker is delivering
	skip     int    // spool events already delivered (moved while in flight)
	moved    []*waiter
	lost     uint64
	lostFrom time.Time
	sleeping bool
	closed   bool // no more events
	wake     chan struct{}
	done     chan struct{}

	delivered, spooled, replayed, lostC, errs prometheus.Counter
}

func (l *lane) wakeLocked() {
	if l.sleeping {
		l.sleeping = false
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// push queues one event. It returns the spool position to wait for when
// the event went to the spool (0 otherwise).
func (l *lane) push(it item, force bool) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if !l.spooling {
		// A durable event for a sink that cannot fsync goes to the
		// spool, which can.
		if l.n < len(l.ring) && (it.w == nil || l.syncer != nil) {
			l.ring[(l.head+l.n)%len(l.ring)] = it
			l.n++
			l.wakeLocked()
			return 0, nil
		}
		l.toSpoolLocked()
	}
	pos, err := l.spool.appendLocked(it.b, force)
	if err != nil {
		if !errors.Is(err, errSpoolFull) {
			l.p.log.Error("audit: cannot write the spool", slog.String("sink", l.name), slog.String("err", err.Error()))
		}
		if l.p.refuse || it.w != nil {
			return 0, ErrRefused
		}
		l.lostLocked(1)
		return 0, nil
	}
	l.spooled.Inc()
	l.wakeLocked()
	return pos, nil
}

func (l *lane) lostLocked(n int) {
	if l.lost == 0 {
		l.lostFrom = l.p.now()
	}
	l.lost += uint64(n)
	l.lostC.Add(float64(n))
}

// toSpoolLocked moves the ring into the spool and spools from now on.
// Events already accepted are written even over budget: the budget
// applies to new events.
func (l *lane) toSpoolLocked() {
	l.gen++
	l.spooling = true
	for ; l.n > 0; l.n-- {
		it := l.ring[l.head]
		l.ring[l.head] = item{}
		l.head = (l.head + 1) % len(l.ring)
		if _, err := l.spool.appendLocked(it.b, true); err != nil {
			l.p.log.Error("audit: cannot write the spool; the event is lost", slog.String("sink", l.name), slog.String("err", err.Error()))
			l.lostLocked(1)
			if it.w != nil {
				it.w.finish(ErrRefused)
			}
			continue
		}
		l.spooled.Inc()
		if it.w != nil {
			l.moved = append(l.moved, it.w)
		}
	}
	l.head = 0
	if len(l.moved) > 0 {
		l.sleeping = true
		l.wakeLocked()
	}
}

// syncSpool waits until spool position pos is fsynced, sharing the fsync
// with every other waiter.
func (l *lane) syncSpool(pos uint64) error {
	return l.spool.gs.wait(pos, func() (uint64, error) {
		l.mu.Lock()
		f, upto, err := l.spool.flushLocked()
		l.mu.Unlock()
		if err != nil || f == nil {
			return upto, err
		}
		if err := f.Sync(); err != nil && !isClosedFile(err) {
			return 0, err
		}
		l.p.spoolFsyncs.Inc()
		return upto, nil
	})
}

// finishMoved completes the waiters of events moved into the spool once
// it is fsynced.
func (l *lane) finishMoved() {
	l.mu.Lock()
	moved := l.moved
	l.moved = nil
	pos := l.spool.written
	l.mu.Unlock()
	if len(moved) == 0 {
		return
	}
	err := l.syncSpool(pos)
	for _, w := range moved {
		w.finish(err)
	}
}

// run delivers until Close: from the ring or, while spooling, from the
// spool, retrying failed batches with backoff.
func (l *lane) run() {
	defer close(l.done)
	failures := 0
	var hand [][]byte // a spool batch not yet delivered
	nextTick := l.p.now().Add(tickEvery)
	idle := time.NewTimer(tickEvery)
	defer idle.Stop()
	for {
		l.finishMoved()
		if now := l.p.now(); l.ticker != nil && !now.Before(nextTick) {
			nextTick = now.Add(tickEvery)
			if err := l.ticker.tick(now); err != nil {
				l.p.log.Error("audit: sink periodic work", slog.String("sink", l.name), slog.String("err", err.Error()))
			}
			l.p.maybeRetain(l, now)
		}
		if l.p.stopped() {
			l.stop()
			return
		}

		l.mu.Lock()
		if hand == nil && !l.spooling {
			if l.n == 0 {
				if l.closed {
					l.mu.Unlock()
					l.stop()
					return
				}
				l.sleeping = true
				l.mu.Unlock()
				idle.Reset(tickEvery)
				select {
				case <-l.wake:
				case <-idle.C:
				case <-l.p.stopCtx.Done():
				}
				continue
			}
			k := min(l.n, maxBatch)
			batch := make([][]byte, k)
			var waiters []*waiter
			for i := range k {
				it := l.ring[(l.head+i)%len(l.ring)]
				batch[i] = it.b
				if it.w != nil {
					waiters = append(waiters, it.w)
				}
			}
			l.inflight = k
			gen := l.gen
			l.mu.Unlock()

			err := l.write(batch)
			if err == nil && len(waiters) > 0 {
				err = l.syncer.Sync()
				if err == nil {
					l.p.fileFsyncs.Inc()
				}
				for _, w := range waiters {
					w.finish(err)
				}
				err = nil // the events were delivered; only their durability failed
			}
			l.mu.Lock()
			l.inflight = 0
			if err == nil {
				if l.gen == gen {
					for i := range k {
						l.ring[(l.head+i)%len(l.ring)] = item{}
					}
					l.head = (l.head + k) % len(l.ring)
					l.n -= k
				} else {
					l.skip += k
				}
				failures = 0
			} else {
				failures++
				if l.gen == gen {
					l.toSpoolLocked()
				}
			}
			l.mu.Unlock()
			continue
		}

		if hand == nil {
			var err error
			hand, err = l.readSpoolLocked()
			if err != nil {
				l.mu.Unlock()
				l.p.log.Error("audit: cannot read the spool", slog.String("sink", l.name), slog.String("err", err.Error()))
				l.sleepFor(time.Second)
				continue
			}
			if hand == nil {
				// Caught up: back to the memory queue.
				l.spool.resetLocked()
				l.spooling = false
				lost, from := l.lost, l.lostFrom
				l.lost = 0
				l.mu.Unlock()
				if lost > 0 {
					l.p.recordLoss(l.name, lost, from)
				}
				continue
			}
		}
		l.mu.Unlock()

		if failures > 0 && !l.backoff(failures) {
			continue
		}
		if err := l.write(hand); err != nil {
			failures++
			continue
		}
		failures = 0
		l.replayed.Add(float64(len(hand)))
		hand = nil
		l.mu.Lock()
		l.spool.commitLocked()
		l.mu.Unlock()
	}
}

// readSpoolLocked returns the next spool batch, nil when the spool has
// been read to its end, after discarding events delivered before they
// were moved into it.
func (l *lane) readSpoolLocked() ([][]byte, error) {
	for l.skip > 0 {
		got, err := l.spool.readLocked(min(l.skip, maxBatch))
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			break
		}
		l.skip -= len(got)
		l.spool.commitLocked()
	}
	batch, err := l.spool.readLocked(maxBatch)
	if err != nil || len(batch) > 0 {
		return batch, err
	}
	if l.spool.caughtUpLocked() {
		return nil, nil
	}
	return nil, errors.New("spool read stopped before its end")
}

// write delivers one batch.
func (l *lane) write(batch [][]byte) error {
	ctx, cancel := context.WithTimeout(l.p.stopCtx, attemptTimeout)
	defer cancel()
	if err := l.sink.Write(ctx, batch); err != nil {
		l.errs.Inc()
		l.p.log.Warn("audit: sink write failed; retrying", slog.String("sink", l.name), slog.Int("events", len(batch)), slog.String("err", err.Error()))
		return err
	}
	l.delivered.Add(float64(len(batch)))
	return nil
}

// backoff sleeps before retry number failures: exponential with full
// jitter between half and all of the step. It returns false when the
// pipeline stopped meanwhile.
func (l *lane) backoff(failures int) bool {
	d := l.p.retryBase << min(failures-1, 20)
	if d > l.p.retryMax || d <= 0 {
		d = l.p.retryMax
	}
	d = d/2 + rand.N(d/2+1)
	return l.sleepFor(d)
}

func (l *lane) sleepFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.p.stopCtx.Done():
		return false
	}
}

// stop keeps what is undelivered in the spool for the next start.
func (l *lane) stop() {
	l.mu.Lock()
	l.closed = true
	if !l.spooling && l.n > 0 {
		l.toSpoolLocked()
	}
	moved := l.moved
	l.moved = nil
	err := l.spool.closeLocked()
	l.mu.Unlock()
	for _, w := range moved {
		w.finish(err)
	}
}
