// Package logbuf owns the buffered writer behind the process log: log lines
// are collected in memory and written out when the buffer fills or at a
// short interval, so that a busy gateway does not pay one write system call
// per request line. Close writes out what is left.
//
// It does not format anything; log/slog does.
package logbuf

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Writer is a buffered, periodically flushed, concurrency-safe io.Writer.
type Writer struct {
	mu    sync.Mutex
	buf   *bufio.Writer
	err   error
	stop  chan struct{}
	done  chan struct{}
	close sync.Once
}

// New returns a Writer that flushes to w when size bytes are buffered and
// at least every interval. A record is never split across flushes unless it
// is larger than size.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	lw := &Writer{buf: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.loop(interval)
	return lw
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write buffers p. A log line that would not fit in what is left of the
// buffer first flushes what is there, so lines reach the output whole.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > w.buf.Available() && w.buf.Buffered() > 0 {
		if err := w.buf.Flush(); err != nil {
			w.err = err
		}
	}
	return w.buf.Write(p)
}

// Flush writes out everything buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

// Close stops the periodic flush and writes out what is left.
func (w *Writer) Close() error {
	w.close.Do(func() {
		close(w.stop)
		<-w.done
	})
	return w.Flush()
}
