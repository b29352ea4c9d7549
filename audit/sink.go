package audit

import (
	"bufio"
	"context"
	"io"
	"os"
	"sync"
	"time"
)

// Sink receives events. Each batch element is one event, a JSON object
// without a trailing newline. Write delivers the whole batch in order or
// returns an error; the pipeline then keeps the batch (in its spool) and
// retries it with exponential backoff and jitter, never reordering, so a
// sink sees every event at least once and, unless the process stops in
// the middle of a delivery, exactly once. metadata.uid identifies an
// event for sinks that need to recognise a repeat.
//
// The pipeline calls Write from one goroutine per sink, never
// concurrently; Close is called once, after the last Write.
type Sink interface {
	Name() string
	Write(ctx context.Context, batch [][]byte) error
	Close() error
}

// Syncer is a Sink that can make what it was written durable on local
// disk. EmitDurable returns once the event's sink has synced it, or its
// spool has: the pipeline syncs the strict events' sink after each batch,
// so that every strict caller of a batch shares one fsync.
type Syncer interface {
	Sync() error
}

// ticker is a sink with periodic work (signing the head, age rotation);
// the pipeline calls tick about once a second from the sink's goroutine.
type ticker interface {
	tick(now time.Time) error
}

// StdoutSinkName is the Name of the standard output sink.
const StdoutSinkName = "stdout"

// StdoutSink writes each event as a JSON line to an output, standard
// output by default, one write per batch.
type StdoutSink struct {
	mu  sync.Mutex
	w   *bufio.Writer
	out io.Writer
}

var _ Sink = (*StdoutSink)(nil)

// NewStdoutSink returns a sink writing to out; nil means os.Stdout.
func NewStdoutSink(out io.Writer) *StdoutSink {
	if out == nil {
		out = os.Stdout
	}
	return &StdoutSink{w: bufio.NewWriterSize(out, 64<<10), out: out}
}

// Name returns "stdout".
func (s *StdoutSink) Name() string { return StdoutSinkName }

// Write writes the batch as lines and flushes. On error the partial output
// is dropped from the buffer and the batch is retried whole.
func (s *StdoutSink) Write(_ context.Context, batch [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range batch {
		s.w.Write(ev)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		s.w.Reset(s.out)
		return err
	}
	return nil
}

// Close flushes; it does not close standard output.
func (s *StdoutSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}
