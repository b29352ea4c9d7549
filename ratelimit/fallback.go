package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Fallback checks against a shared limiter (Redis) and decides what a
// check does when that fails with ErrUnavailable: with a local limiter it
// answers from the local one (on_redis_error: local); without, it returns
// the error and the caller answers 503 (deny).
//
// After a few failures in a row it stops waiting for the shared limiter:
// checks go straight to the local limiter (or fail at once) and one check
// a second tries the shared limiter again. A Redis that hangs therefore
// costs its timeout once a second instead of on every request, and the
// first check it answers ends the outage. An outage is logged once at warn
// when it starts and once at info when it ends.
type Fallback struct {
	shared Limiter
	local  *Local
	now    func() time.Time
	log    *slog.Logger

	fails  atomic.Int32 // failures in a row
	outage atomic.Bool  // an outage is logged and its end not yet

	mu          sync.Mutex
	outageStart time.Time
	probing     bool      // a check is trying the shared limiter
	nextProbe   time.Time // when the next check may try it
}

const (
	// tripAfter is how many failures in a row stop checks from waiting for
	// the shared limiter.
	tripAfter = 3
	// probeEvery is how often a check tries a failing shared limiter.
	probeEvery = time.Second
)

// errSkipped is what a deny-mode check returns without trying Redis.
var errSkipped = fmt.Errorf("%w: redis is failing; tried again every %s", ErrUnavailable, probeEvery)

// NewFallback returns a Fallback in front of shared; local nil means deny.
// now is the clock (nil: time.Now); log receives the outage messages (nil:
// discarded).
func NewFallback(shared Limiter, local *Local, now func() time.Time, log *slog.Logger) *Fallback {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fallback{shared: shared, local: local, now: now, log: log}
}

// Allow implements Limiter.
func (f *Fallback) Allow(ctx context.Context, key string, tier string) (Result, error) {
	if f.fails.Load() >= tripAfter {
		if !f.startProbe() {
			return f.degraded(ctx, key, tier, errSkipped)
		}
		defer f.endProbe()
	}
	r, err := f.shared.Allow(ctx, key, tier)
	switch {
	case err == nil:
		f.recovered()
		return r, nil
	case !errors.Is(err, ErrUnavailable) || ctx.Err() != nil:
		// A configuration mistake, a bad key, or the request is over: no
		// sign that Redis is failing.
		return r, err
	}
	f.failed(err)
	return f.degraded(ctx, key, tier, err)
}

func (f *Fallback) degraded(ctx context.Context, key, tier string, err error) (Result, error) {
	if f.local == nil {
		return Result{}, err
	}
	return f.local.Allow(ctx, key, tier)
}

func (f *Fallback) failed(err error) {
	n := f.fails.Add(1)
	first := f.outage.CompareAndSwap(false, true)
	if !first && n != tripAfter {
		return
	}
	now := f.now()
	f.mu.Lock()
	if n == tripAfter {
		f.nextProbe = now.Add(probeEvery)
	}
	if first {
		f.outageStart = now
	}
	f.mu.Unlock()
	switch {
	case !first:
	case f.local != nil:
		f.log.Warn("ratelimit: redis failed; limiting on this replica alone until it answers", "err", err)
	default:
		f.log.Warn("ratelimit: redis failed; rate-limited requests are refused until it answers", "err", err)
	}
}

func (f *Fallback) recovered() {
	if f.fails.Load() != 0 {
		f.fails.Store(0)
	}
	if !f.outage.CompareAndSwap(true, false) {
		return
	}
	f.mu.Lock()
	took := f.now().Sub(f.outageStart)
	f.outageStart = time.Time{}
	f.mu.Unlock()
	f.log.Info("ratelimit: redis answers again; limits are shared again", "outage", took)
}

// startProbe reports whether this check may try the failing shared limiter.
func (f *Fallback) startProbe() bool {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.probing || now.Before(f.nextProbe) {
		return false
	}
	f.probing = true
	f.nextProbe = now.Add(probeEvery)
	return true
}

func (f *Fallback) endProbe() {
	f.mu.Lock()
	f.probing = false
	f.mu.Unlock()
}
