package trail

import (
	"sync"

	"github.com/crmgate/crmgate/audit"
)

// recentSize is how many of the latest events the trail keeps in memory
// for the admin dashboard.
const recentSize = 512

// ring keeps the latest events, without their extra fields.
type ring struct {
	mu     sync.Mutex
	events [recentSize]audit.Event
	next   int
	full   bool
}

func (r *ring) add(e audit.Event) {
	e.Fields = nil
	r.mu.Lock()
	r.events[r.next] = e
	r.next++
	if r.next == recentSize {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// latest returns up to limit events, newest first.
func (r *ring) latest(limit int) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = recentSize
	}
	limit = min(max(limit, 0), n)
	out := make([]audit.Event, 0, limit)
	for i := 1; i <= limit; i++ {
		out = append(out, r.events[(r.next-i+recentSize)%recentSize])
	}
	return out
}

// Recent returns up to limit of the latest events the trail recorded,
// newest first, without their extra fields, for the admin dashboard.
func (t *Trail) Recent(limit int) []audit.Event { return t.recent.latest(limit) }
