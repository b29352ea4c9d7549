package session

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// MemoryStore keeps sessions in this process. It is the default and is for
// one replica only: another replica neither sees its sessions nor learns of
// its revocations (use RedisStore there). It holds at most a configured
// number of entries; expired entries are swept as writes happen, and when
// it is full the entry closest to expiry is dropped to make room, so a flood
// of logins cannot grow memory without bound.
type MemoryStore struct {
	now      func() time.Time
	max      int
	onRevoke func(Revocation)

	mu      sync.RWMutex
	entries map[string]*memEntry
	users   map[string]*memEntry // user key -> first of the user's entries
	byExp   expiryHeap
	locks   map[string]memLock
}

var _ Store = (*MemoryStore)(nil)

// memEntry is one stored entry. The entries of one user are a list
// threaded through them, so the per-user index costs two pointers per
// entry rather than a map per user.
type memEntry struct {
	Entry
	index              int // in byExp
	prevUser, nextUser *memEntry
}

type memLock struct {
	token   string
	expires time.Time
}

// MemoryOptions configures a MemoryStore.
type MemoryOptions struct {
	// MaxEntries bounds the number of sessions; 0 means 100000.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRevoke, when set, is called after sessions are deleted, with the
	// store's lock released.
	OnRevoke func(Revocation)
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(o MemoryOptions) *MemoryStore {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MemoryStore{
		now:      o.Now,
		max:      o.MaxEntries,
		onRevoke: o.OnRevoke,
		entries:  map[string]*memEntry{},
		users:    map[string]*memEntry{},
		locks:    map[string]memLock{},
	}
}

// Len returns the number of entries held, expired ones not yet swept
// included.
func (s *MemoryStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.entries)
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key string) (Entry, error) {
	now := s.now()
	s.mu.RLock()
	e, ok := s.entries[key]
	var out Entry
	if ok {
		out = e.Entry
	}
	s.mu.RUnlock()
	if !ok || !now.Before(out.Expires) {
		return Entry{}, ErrNotFound
	}
	return out, nil
}

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, e Entry) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if _, ok := s.entries[e.Key]; ok {
		return ErrExists
	}
	for len(s.entries) >= s.max {
		s.remove(s.byExp[0])
	}
	me := &memEntry{Entry: e}
	me.Data = append([]byte(nil), e.Data...)
	s.entries[e.Key] = me
	heap.Push(&s.byExp, me)
	s.indexUser(me)
	return nil
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, e Entry, expect uint64) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	me, ok := s.entries[e.Key]
	if !ok {
		return ErrNotFound
	}
	if me.Version != expect {
		return ErrConflict
	}
	userKey := me.UserKey
	if userKey != e.UserKey {
		s.unindexUser(me)
	}
	me.Entry = e
	me.Data = append([]byte(nil), e.Data...)
	if userKey != e.UserKey {
		s.indexUser(me)
	} else {
		me.UserKey = userKey // the string already held
	}
	heap.Fix(&s.byExp, me.index)
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	me, ok := s.entries[key]
	if ok {
		s.remove(me)
	}
	s.mu.Unlock()
	if ok {
		s.revoked(Revocation{Keys: []string{key}})
	}
	return nil
}

// DeleteUser implements Store. Like RedisStore it counts the entries it
// removed, expired ones not yet swept included.
func (s *MemoryStore) DeleteUser(ctx context.Context, userKey string) (int, error) {
	s.mu.Lock()
	var keys []string
	for me := s.users[userKey]; me != nil; {
		next := me.nextUser
		keys = append(keys, me.Key)
		s.remove(me)
		me = next
	}
	s.mu.Unlock()
	if len(keys) > 0 {
		s.revoked(Revocation{Keys: keys})
	}
	return len(keys), nil
}

// DeleteAll implements Store.
func (s *MemoryStore) DeleteAll(ctx context.Context) (int, error) {
	s.mu.Lock()
	n := len(s.entries)
	s.entries = map[string]*memEntry{}
	s.users = map[string]*memEntry{}
	s.byExp = nil
	s.mu.Unlock()
	s.revoked(Revocation{All: true})
	return n, nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context) ([]Entry, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Entry, 0, len(s.entries))
	for _, me := range s.entries {
		if now.Before(me.Expires) {
			out = append(out, me.Entry)
		}
	}
	return out, nil
}

// TryLock implements Locker.
func (s *MemoryStore) TryLock(ctx context.Context, name, token string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[name]; ok && now.Before(l.expires) {
		return ErrLocked
	}
	// Sweep expired locks now and then so that names do not pile up.
	if len(s.locks) > 64 {
		for n, l := range s.locks {
			if !now.Before(l.expires) {
				delete(s.locks, n)
			}
		}
	}
	s.locks[name] = memLock{token: token, expires: now.Add(ttl)}
	return nil
}

// Unlock implements Locker.
func (s *MemoryStore) Unlock(ctx context.Context, name, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[name]; ok && l.token == token {
		delete(s.locks, name)
	}
	return nil
}

func (s *MemoryStore) revoked(r Revocation) {
	if s.onRevoke != nil {
		s.onRevoke(r)
	}
}

// sweep drops expired entries, earliest first; s.mu must be held.
func (s *MemoryStore) sweep(now time.Time) {
	for len(s.byExp) > 0 && !now.Before(s.byExp[0].Expires) {
		s.remove(s.byExp[0])
	}
}

// remove drops me from every index; s.mu must be held.
func (s *MemoryStore) remove(me *memEntry) {
	delete(s.entries, me.Key)
	s.unindexUser(me)
	if me.index >= 0 && me.index < len(s.byExp) && s.byExp[me.index] == me {
		heap.Remove(&s.byExp, me.index)
	}
}

// indexUser puts me first in its user's list; s.mu must be held.
func (s *MemoryStore) indexUser(me *memEntry) {
	if me.UserKey == "" {
		return
	}
	if head := s.users[me.UserKey]; head != nil {
		// One copy of the user key for all of the user's entries.
		me.UserKey = head.UserKey
		head.prevUser = me
		me.nextUser = head
	}
	s.users[me.UserKey] = me
}

// unindexUser takes me out of its user's list; s.mu must be held.
func (s *MemoryStore) unindexUser(me *memEntry) {
	if me.UserKey == "" {
		return
	}
	if me.prevUser != nil {
		me.prevUser.nextUser = me.nextUser
	} else if s.users[me.UserKey] == me {
		if me.nextUser != nil {
			s.users[me.UserKey] = me.nextUser
		} else {
			delete(s.users, me.UserKey)
		}
	}
	if me.nextUser != nil {
		me.nextUser.prevUser = me.prevUser
	}
	me.prevUser, me.nextUser = nil, nil
}

// expiryHeap orders entries by Expires, earliest first (container/heap).
type expiryHeap []*memEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].Expires.Before(h[j].Expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *expiryHeap) Push(x any) {
	me := x.(*memEntry)
	me.index = len(*h)
	*h = append(*h, me)
}
func (h *expiryHeap) Pop() any {
	old := *h
	me := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	me.index = -1
	return me
}
