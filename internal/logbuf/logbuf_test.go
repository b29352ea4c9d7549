package logbuf

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWriterFlushes(t *testing.T) {
	out := &syncBuf{}
	w := New(out, 1024, 20*time.Millisecond)
	defer w.Close()
	w.Write([]byte("line 1\n"))
	if out.String() != "" {
		t.Fatalf("written before the interval: %q", out.String())
	}
	deadline := time.Now().Add(2 * time.Second)
	for out.String() != "line 1\n" {
		if time.Now().After(deadline) {
			t.Fatalf("not flushed after the interval: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriterKeepsLinesWhole(t *testing.T) {
	out := &syncBuf{}
	w := New(out, 64, time.Hour)
	line := strings.Repeat("x", 39) + "\n"
	for range 10 {
		w.Write([]byte(line))
	}
	w.Close()
	if got := out.String(); got != strings.Repeat(line, 10) {
		t.Fatalf("output = %q", got)
	}
	// Each flush carried only whole lines (one 40-byte line per 64-byte buffer).
	if out.writes != 10 {
		t.Errorf("writes = %d, want 10", out.writes)
	}
}

func TestWriterConcurrent(t *testing.T) {
	out := &syncBuf{}
	w := New(out, 4096, time.Millisecond)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				w.Write([]byte{byte('a' + i), '\n'})
			}
		})
	}
	wg.Wait()
	w.Close()
	if n := strings.Count(out.String(), "\n"); n != 800 {
		t.Errorf("lines = %d, want 800", n)
	}
}
