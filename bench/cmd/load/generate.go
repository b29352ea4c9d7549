package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/crmgate/crmgate/bench/internal/stats"
)

// plan is one run: what to send, where, how fast and for how long.
type plan struct {
	addr     string
	tls      *tls.Config
	request  []byte
	rate     float64
	duration time.Duration
	conns    int
	timeout  time.Duration
	drain    time.Duration
	tick     time.Duration
}

// result is what a run measured. Latencies are in microseconds and count
// from each request's scheduled time to the end of its response body.
type result struct {
	URL       string  `json:"url"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`
	Conns     int     `json:"conns"`
	// Scheduled = Completed + Errors + Unsent.
	Scheduled int `json:"scheduled"`
	Completed int `json:"completed"`
	Errors    int `json:"errors"`
	// Unsent requests were still queued when the drain time ran out.
	Unsent     int    `json:"unsent"`
	FirstError string `json:"first_error,omitempty"`
	// AchievedRate is completed requests per second of the whole run.
	AchievedRate float64 `json:"achieved_rate"`
	P50us        float64 `json:"p50_us"`
	P90us        float64 `json:"p90_us"`
	P99us        float64 `json:"p99_us"`
	MaxUs        float64 `json:"max_us"`
	// Lag is how late requests left the generator (scheduled time to the
	// start of the write), part of the latencies above on purpose. Most
	// of it is waiting for a free connection, which the server causes.
	LagP50us float64 `json:"lag_p50_us"`
	LagP99us float64 `json:"lag_p99_us"`
	// GenLag is the part of the lag the generator itself caused: from
	// the later of the scheduled time and the moment a connection was free
	// to the write. A high GenLagP99us means the generator was short of
	// CPU, so the latencies above are upper bounds.
	GenLagP99us float64 `json:"gen_lag_p99_us"`
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "%s at %.0f req/s for %.1fs over %d connections\n", r.URL, r.Rate, r.DurationS, r.Conns)
	fmt.Fprintf(w, "  scheduled %d, completed %d, errors %d, unsent %d (%.0f req/s achieved)\n", r.Scheduled, r.Completed, r.Errors, r.Unsent, r.AchievedRate)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  latency  p50 %.0fus  p90 %.0fus  p99 %.0fus  max %.0fus\n", r.P50us, r.P90us, r.P99us, r.MaxUs)
	fmt.Fprintf(w, "  send lag p50 %.0fus  p99 %.0fus (generator's own p99 %.0fus)\n", r.LagP50us, r.LagP99us, r.GenLagP99us)
}

// worker is one connection's share of a run.
type worker struct {
	c                client
	lat, lag, genLag []time.Duration
	errors           int
	firstErr         error
}

// generate runs p. It returns an error only when the run could not start
// (no connection could be primed) or was interrupted; failed requests are
// counted in the result.
func generate(ctx context.Context, p plan) (*result, error) {
	workers := make([]*worker, p.conns)
	n := int(math.Round(p.rate * p.duration.Seconds()))
	if n < 1 {
		return nil, fmt.Errorf("rate %v for %v schedules no request", p.rate, p.duration)
	}
	// Connect and send one request on every connection before the clock
	// starts, so that handshakes are not part of the measurement.
	for i := range workers {
		w := &worker{c: client{addr: p.addr, tls: p.tls}}
		w.lat = make([]time.Duration, 0, n/p.conns*2+16)
		w.lag = make([]time.Duration, 0, n/p.conns*2+16)
		w.genLag = make([]time.Duration, 0, n/p.conns*2+16)
		if err := w.c.do(p.request, time.Now().Add(p.timeout)); err != nil {
			closeAll(workers[:i])
			return nil, fmt.Errorf("priming connection %d to %s: %w", i+1, p.addr, err)
		}
		workers[i] = w
	}
	defer closeAll(workers)

	// The queue holds the whole schedule, so the dispatcher never blocks
	// on busy connections: the backlog is the queue.
	queue := make(chan time.Time, n)
	interval := float64(time.Second) / p.rate
	start := time.Now().Add(5 * time.Millisecond)
	hardStop := start.Add(p.duration + p.drain)
	runCtx, cancel := context.WithDeadline(ctx, hardStop)
	defer cancel()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(runCtx, queue, p, hardStop) })
	}

	dispatchErr := dispatch(runCtx, queue, n, start, interval, p.tick)
	wg.Wait()
	end := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	if dispatchErr != nil {
		return nil, dispatchErr
	}

	res := &result{Rate: p.rate, DurationS: p.duration.Seconds(), Conns: p.conns, Scheduled: n}
	var lat, lag, genLag []time.Duration
	for _, w := range workers {
		lat = append(lat, w.lat...)
		lag = append(lag, w.lag...)
		genLag = append(genLag, w.genLag...)
		res.Errors += w.errors
		if w.firstErr != nil && res.FirstError == "" {
			res.FirstError = w.firstErr.Error()
		}
	}
	res.Completed = len(lat)
	res.Unsent = n - res.Completed - res.Errors
	res.AchievedRate = float64(res.Completed) / end.Sub(start).Seconds()
	slices.Sort(lat)
	slices.Sort(lag)
	slices.Sort(genLag)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	res.P50us = us(stats.Percentile(lat, 50))
	res.P90us = us(stats.Percentile(lat, 90))
	res.P99us = us(stats.Percentile(lat, 99))
	res.MaxUs = us(stats.Percentile(lat, 100))
	res.LagP50us = us(stats.Percentile(lag, 50))
	res.LagP99us = us(stats.Percentile(lag, 99))
	res.GenLagP99us = us(stats.Percentile(genLag, 99))
	return res, nil
}

// dispatch puts request i's scheduled time, start + i×interval, on queue
// once it is due, for i from 0 to n-1, or until ctx ends. Times are put on
// the queue as soon as they are due so that a free connection sends at
// once; how late that is, is the send lag. It wakes once per request, or,
// when requests are due more often than every minTick, once per batch of
// them, so that pacing does not eat the CPU the generator shares.
func dispatch(ctx context.Context, queue chan<- time.Time, n int, start time.Time, interval float64, minTick time.Duration) error {
	defer close(queue)
	every := int(math.Ceil(float64(minTick) / interval))
	tick := time.Duration(interval * float64(every))
	tk, err := newTicker(time.Until(start), tick)
	if err != nil {
		return err
	}
	defer tk.stop()
	// Ending ctx stops the ticker, which wakes a pending wait.
	unhook := context.AfterFunc(ctx, tk.stop)
	defer unhook()
	for i := 0; i < n; {
		now := time.Now()
		for ; i < n; i++ {
			at := start.Add(time.Duration(float64(i) * interval))
			if at.After(now) {
				break
			}
			queue <- at
		}
		if i == n {
			break
		}
		if err := tk.wait(); err != nil {
			if ctx.Err() != nil {
				return nil // hard stop or interrupt: counted by the caller
			}
			return fmt.Errorf("pacing: %w", err)
		}
	}
	return nil
}

// run takes scheduled times off the queue until it is empty or the run's
// hard stop, sending one request for each.
func (w *worker) run(ctx context.Context, queue <-chan time.Time, p plan, hardStop time.Time) {
	for {
		if ctx.Err() != nil {
			return
		}
		free := time.Now()
		var at time.Time
		select {
		case <-ctx.Done():
			return
		case t, ok := <-queue:
			if !ok {
				return
			}
			at = t
		}
		sent := time.Now()
		deadline := sent.Add(p.timeout)
		if deadline.After(hardStop) {
			deadline = hardStop
		}
		err := w.c.do(p.request, deadline)
		done := time.Now()
		if err != nil {
			if !done.Before(hardStop) && !isStatus(err) {
				// Cut off by the hard stop: unsent, not failed.
				return
			}
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.lat = append(w.lat, done.Sub(at))
		w.lag = append(w.lag, sent.Sub(at))
		// A request due while this connection was busy waited for the
		// server; only the time after both were ready is the generator's.
		w.genLag = append(w.genLag, sent.Sub(later(at, free)))
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func isStatus(err error) bool {
	var se *statusError
	return errors.As(err, &se)
}

func closeAll(ws []*worker) {
	for _, w := range ws {
		if w != nil {
			w.c.close()
		}
	}
}
