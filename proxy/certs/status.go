package certs

import (
	"crypto/x509"
	"sync"
)

// Status is what the Manager serves now.
type Status struct {
	// Serial counts the certificates installed since Start; it grows by one
	// each time the served certificate changes (a file reload, an ACME
	// certificate loaded or renewed). 0: none yet.
	Serial uint64
	// Leaf is the certificate served now for files and devca; nil for acme,
	// which serves one certificate per domain, and before Start.
	Leaf *x509.Certificate
	// Err is the latest failure to load, reload or obtain a certificate; nil
	// when the latest attempt succeeded. A failed reload keeps the previous
	// certificate serving.
	Err error
}

// state holds the Status and wakes those waiting for it to change.
type state struct {
	mu sync.Mutex
	st Status
	// ch is closed on the next change; nil until someone asks for it.
	ch chan struct{}
}

func (s *state) get() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *state) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// update applies f and wakes the waiters; the caller holds no lock.
func (s *state) update(f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.st)
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

func (s *state) installed(leaf *x509.Certificate) {
	s.update(func(st *Status) {
		st.Serial++
		st.Leaf = leaf
		st.Err = nil
	})
}

func (s *state) failed(err error) {
	s.update(func(st *Status) { st.Err = err })
}
