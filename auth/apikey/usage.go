package apikey

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// usage batches LastUsed writes off the request path: Verify queues the
// key's id, and one background writer at a time hands the store every id
// queued meanwhile in one MarkUsed.
type usage struct {
	mu      sync.Mutex
	pending map[string]time.Time
	// queued is when each id was last queued, so that a key used many
	// times before its record shows the new LastUsed is queued once.
	queued map[string]time.Time
	// idle is closed when the running writer stops; nil when none runs.
	idle chan struct{}
}

func (u *usage) init() {
	u.pending = map[string]time.Time{}
	u.queued = map[string]time.Time{}
}

// noteUse queues rec's use at now unless its LastUsed, or an update
// already queued, is less than LastUsedEvery old. It never blocks on the
// store.
func (m *Manager) noteUse(rec *Record, now time.Time) {
	if now.Sub(rec.LastUsed) < LastUsedEvery {
		return
	}
	u := &m.usage
	u.mu.Lock()
	defer u.mu.Unlock()
	if t, ok := u.queued[rec.ID]; ok && now.Sub(t) < LastUsedEvery {
		return
	}
	u.queued[rec.ID] = now
	u.pending[rec.ID] = now
	if u.idle == nil {
		u.idle = make(chan struct{})
		go m.writeUsage(u.idle)
	}
}

// writeUsage writes queued uses until none is left. A failed write is
// logged and not retried: the next use after LastUsedEvery queues again.
func (m *Manager) writeUsage(idle chan struct{}) {
	u := &m.usage
	for {
		u.mu.Lock()
		batch := u.pending
		if len(batch) == 0 {
			now := m.now()
			for id, t := range u.queued {
				if now.Sub(t) >= LastUsedEvery {
					delete(u.queued, id)
				}
			}
			u.idle = nil
			close(idle)
			u.mu.Unlock()
			return
		}
		u.pending = map[string]time.Time{}
		u.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), markTimeout)
		err := m.store.MarkUsed(ctx, batch)
		cancel()
		if err != nil {
			m.log.LogAttrs(ctx, slog.LevelWarn, "apikey: recording last use", slog.Int("keys", len(batch)), slog.Any("err", err))
		}
	}
}

// wait returns when no writer runs.
func (u *usage) wait() {
	for {
		u.mu.Lock()
		idle := u.idle
		u.mu.Unlock()
		if idle == nil {
			return
		}
		<-idle
	}
}
