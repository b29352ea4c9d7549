//go:build !linux

package main

import (
	"errors"
	"time"
)

var errStopped = errors.New("ticker stopped")

// ticker wakes the dispatcher on a fixed period. Outside Linux it is a
// time.Ticker, whose precision may be as coarse as a millisecond; the
// harness runs on Linux.
type ticker struct {
	t    *time.Ticker
	done chan struct{}
}

func newTicker(first, every time.Duration) (*ticker, error) {
	time.Sleep(first)
	return &ticker{t: time.NewTicker(every), done: make(chan struct{})}, nil
}

func (t *ticker) wait() error {
	select {
	case <-t.t.C:
		return nil
	case <-t.done:
		return errStopped
	}
}

func (t *ticker) stop() {
	t.t.Stop()
	select {
	case <-t.done:
	default:
		close(t.done)
	}
}
