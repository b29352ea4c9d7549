package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/policy"
)

// run starts l.Run and returns a func that stops it and waits.
func run(t *testing.T, l *Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

func TestLogWritesLines(t *testing.T) {
	reg := prometheus.NewRegistry()
	out := &syncBuffer{}
	l := newTestLogger(t, Config{}, out, Options{Registerer: reg})
	stop := run(t, l)
	for range 10 {
		l.Log(Entry{Input: testInput(), Decision: testDecision()})
	}
	// Flushed within the interval, without a shutdown.
	waitFor(t, "10 lines", func() bool { return out.Count() == 10 })
	stop()
	for i, ln := range out.Lines() {
		decodeOPA(t, []byte(ln))
		if !strings.Contains(ln, `"decision_id":"00000000-0000-4000-8000-0000000000`) {
			t.Errorf("line %d: %s", i, ln)
		}
	}
	if got := count(t, reg, ResultWritten); got != 10 {
		t.Errorf("written = %v, want 10", got)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	buf     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.buf.Write(p)
}

// A stuck output never holds up the request path: once the queue is full,
// Log drops and counts, and returns at once.
func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	reg := prometheus.NewRegistry()
	out := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := newTestLogger(t, Config{Queue: 4}, out, Options{Registerer: reg})
	stop := run(t, l)

	// An event bigger than the buffer is written at once, and blocks
	// the writer goroutine in the output.
	big := testInput()
	big.Request.Headers["user-agent"] = strings.Repeat("x", bufferSize+1)
	l.Log(Entry{Input: big, Decision: testDecision()})
	select {
	case <-out.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("writer never reached the output")
	}

	start := time.Now()
	for range 100 {
		l.Log(Entry{Input: testInput(), Decision: testDecision()})
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100 Log calls took %s with a stuck output", d)
	}
	if got := count(t, reg, ResultDropped); got != 96 {
		t.Errorf("dropped = %v, want 96 (100 minus a queue of 4)", got)
	}

	close(out.release)
	stop()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.buf.Count(); got != 5 {
		t.Errorf("%d lines written, want 5", got)
	}
	if got := count(t, reg, ResultWritten); got != 5 {
		t.Errorf("written = %v, want 5", got)
	}
}

// Shutdown writes every queued event before Run returns, and later events
// are dropped.
func TestShutdownDrains(t *testing.T) {
	reg := prometheus.NewRegistry()
	out := &syncBuffer{}
	l := newTestLogger(t, Config{Queue: 1000}, out, Options{Registerer: reg})
	for range 500 {
		l.Log(Entry{Input: testInput(), Decision: testDecision()})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := out.Count(); got != 500 {
		t.Errorf("%d lines after Run returned, want 500", got)
	}
	l.Log(Entry{Decision: testDecision()})
	if got := count(t, reg, ResultDropped); got != 1 {
		t.Errorf("dropped after shutdown = %v, want 1", got)
	}
	if err := l.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Run = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close without Run writes what is queued; Close while Run runs stops it.
func TestClose(t *testing.T) {
	t.Run("without Run", func(t *testing.T) {
		out := &syncBuffer{}
		l := newTestLogger(t, Config{}, out, Options{})
		l.Log(Entry{Decision: testDecision()})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if got := out.Count(); got != 1 {
			t.Errorf("%d lines, want 1", got)
		}
		if err := l.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := l.Run(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Run after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("while running", func(t *testing.T) {
		out := &syncBuffer{}
		l := newTestLogger(t, Config{}, out, Options{})
		done := make(chan error, 1)
		go func() { done <- l.Run(context.Background()) }()
		waitFor(t, "Run", func() bool { l.mu.RLock(); defer l.mu.RUnlock(); return l.running })
		l.Log(Entry{Decision: testDecision()})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if got := out.Count(); got != 1 {
			t.Errorf("%d lines, want 1", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		l, err := New(testConfig(t, Config{}), Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Log(Entry{Decision: testDecision()})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	t.Run("nil", func(t *testing.T) {
		var l *Logger
		l.Log(Entry{})
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		if err := l.Reopen(); err != nil {
			t.Error(err)
		}
	})
}

// Attack: an output that never takes its data (a stalled pipe) cannot
// hang the gateway's shutdown.
func TestCloseBlockedOutput(t *testing.T) {
	out := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(out.release)
	l := newTestLogger(t, Config{}, out, Options{})
	l.closeTimeout = 50 * time.Millisecond
	stop := make(chan struct{})
	go func() { _ = l.Run(context.Background()); close(stop) }()
	big := testInput()
	big.Request.Headers["user-agent"] = strings.Repeat("x", bufferSize+1)
	l.Log(Entry{Input: big, Decision: testDecision()})
	<-out.entered
	l.Log(Entry{Decision: testDecision()})
	start := time.Now()
	err := l.Close()
	if err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Errorf("Close = %v, want the output reported blocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %s", d)
	}
}

func TestIncludeAllowedFalse(t *testing.T) {
	out := &syncBuffer{}
	l := newTestLogger(t, Config{IncludeAllowed: ptr(false)}, out, Options{})
	deny := testDecision()
	deny.Allow = false
	l.Log(Entry{Decision: testDecision()})
	l.Log(Entry{Decision: deny})
	l.Log(Entry{Decision: failedDecision()})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := out.Lines()
	if len(lines) != 2 {
		t.Fatalf("%d lines, want the 2 denies: %q", len(lines), lines)
	}
	for _, ln := range lines {
		if strings.Contains(ln, `"allow":true`) {
			t.Errorf("allow logged: %s", ln)
		}
	}
}

func TestFileOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.log")
	l, err := New(testConfig(t, Config{Output: fresh}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("created with mode %o, want 600", perm)
	}
	_ = l.Close()

	l, err = New(testConfig(t, Config{Output: path}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, l)
	l.Log(Entry{Decision: testDecision(), RequestID: "first"})
	waitFor(t, "the first line", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Count(b, []byte{'\n'}) == 2
	})

	// Rotation: the file is moved away, then Reopen creates it again.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(Entry{Decision: testDecision(), RequestID: "second"})
	stop()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(rotated)
	if !strings.HasPrefix(string(old), "earlier\n") || !strings.Contains(string(old), `"request_id":"first"`) {
		t.Errorf("the file was not appended to: %q", old)
	}
	cur, _ := os.ReadFile(path)
	if bytes.Count(cur, []byte{'\n'}) != 1 || !strings.Contains(string(cur), `"request_id":"second"`) {
		t.Errorf("reopened file = %q, want the second event", cur)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened file mode %o, want 600", fi.Mode().Perm())
	}

	if _, err := New(testConfig(t, Config{Output: filepath.Join(dir, "missing", "x.log")}), Options{}); err == nil {
		t.Error("New with a file in a missing folder succeeded")
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// A failing output counts its lost events and is reported once, not once
// per event.
func TestWriteErrorCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	l := newTestLogger(t, Config{}, failingWriter{}, Options{Registerer: reg, Logger: log})
	for range 3 {
		l.Log(Entry{Decision: testDecision()})
	}
	l.drain()
	l.Log(Entry{Decision: testDecision()})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, reg, ResultError); got != 4 {
		t.Errorf("error = %v, want 4", got)
	}
	if got := strings.Count(logs.String(), "cannot write"); got != 1 {
		t.Errorf("reported %d times, want once:\n%s", got, logs.String())
	}
}

// Lines stay whole in the output, whatever their sizes.
func TestLinesWhole(t *testing.T) {
	out := &syncBuffer{}
	l := newTestLogger(t, Config{Queue: 100}, out, Options{})
	stop := run(t, l)
	for i := range 60 {
		in := testInput()
		in.Request.Headers["user-agent"] = strings.Repeat("y", i*3000)
		l.Log(Entry{Input: in, Decision: testDecision()})
	}
	stop()
	lines := out.Lines()
	if len(lines) != 60 {
		t.Fatalf("%d lines, want 60", len(lines))
	}
	for _, ln := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(ln), &ev); err != nil {
			t.Fatalf("broken line: %v", err)
		}
	}
}

// Attack: a request id holding control characters is escaped and cannot
// start a line of its own.
func TestRequestIDControlCharacters(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	rid := "r1\n{\"decision_id\":\"forged\"}\r\x00\x1b"
	m := decodeEvent(t, encode(l, Entry{Decision: policy.Decision{Allow: true}, RequestID: rid}))
	if got := m["custom"].(map[string]any)["request_id"]; got != rid {
		t.Errorf("request_id = %q, want %q", got, rid)
	}
}
