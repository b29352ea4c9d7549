// Package clocktest is the controllable clock that tests inject where the
// code under test takes a Now func: session expiry, key rotation, token
// lifetimes and rate limits are then exact.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when told. It is safe for concurrent
// use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock showing start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time; pass it where a func() time.Time is taken.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Add is Advance.
func (c *Clock) Add(d time.Duration) { c.Advance(d) }
