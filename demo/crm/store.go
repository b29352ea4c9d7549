package crm

import (
	"slices"
	"strings"
	"sync"
)

// store holds the mutable contacts. Deals, invoices and admin users never
// change after New, so they live on Server without a lock.
type store struct {
	mu     sync.RWMutex
	byID   map[int]Contact
	ids    []int // ascending, so listings are ordered by id
	nextID int
}

func newStore(contacts []Contact) *store {
	s := &store{byID: make(map[int]Contact, len(contacts)), ids: make([]int, 0, len(contacts))}
	for _, c := range contacts {
		s.byID[c.ID] = c
		s.ids = append(s.ids, c.ID)
		s.nextID = max(s.nextID, c.ID)
	}
	slices.Sort(s.ids)
	s.nextID++
	return s
}

// list returns the matching contacts on the given zero-based offset window,
// and how many match in total. An empty q matches everything; otherwise q
// matches a case-insensitive substring of name, email or company.
func (s *store) list(q string, offset, limit int) (page []Contact, total int) {
	q = strings.ToLower(q)
	page = []Contact{} // an empty page renders as [], not null
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range s.ids {
		c := s.byID[id]
		if q != "" && !matches(c, q) {
			continue
		}
		if total >= offset && len(page) < limit {
			page = append(page, c)
		}
		total++
	}
	return page, total
}

func matches(c Contact, lowerQ string) bool {
	return strings.Contains(strings.ToLower(c.Name), lowerQ) ||
		strings.Contains(strings.ToLower(c.Email), lowerQ) ||
		strings.Contains(strings.ToLower(c.Company), lowerQ)
}

func (s *store) get(id int) (Contact, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.byID[id]
	return c, ok
}

// create assigns c the next id and stores it.
func (s *store) create(c Contact) Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.ID = s.nextID
	s.nextID++
	s.byID[c.ID] = c
	s.ids = append(s.ids, c.ID) // nextID only grows, so ids stay sorted
	return c
}

// update replaces the contact with id by fn(stored contact), under the write
// lock so concurrent updates cannot lose each other's changes; it reports
// false for an unknown id.
func (s *store) update(id int, fn func(Contact) Contact) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.byID[id]
	if !ok {
		return Contact{}, false
	}
	c := fn(old)
	c.ID = id
	s.byID[id] = c
	return c, true
}

func (s *store) delete(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[id]; !ok {
		return false
	}
	delete(s.byID, id)
	if i, found := slices.BinarySearch(s.ids, id); found {
		s.ids = slices.Delete(s.ids, i, i+1)
	}
	return true
}
