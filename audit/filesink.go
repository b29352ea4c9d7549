package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// FileSinkName is the Name of the file sink.
const FileSinkName = "file"

// FileOptions are the file sink's collaborators.
type FileOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives failures of background work (compression); nil
	// discards them.
	Logger *slog.Logger
	// OnFsync is called after every fsync of the log; nil means nothing.
	OnFsync func()
}

// FileSink writes events as JSON lines with a SHA-256 hash chain and
// signed checkpoints (see chain.go and docs/audit.md), rotates the active
// file by size and age and gzips closed segments. Every segment it closes
// ends with a checkpoint, and so does the active file after Close.
//
// Write delivers a batch to the operating system (one write per batch);
// Sync makes it durable. Its methods are safe for concurrent use.
type FileSink struct {
	// lock keeps other processes from writing the same log.
	lock     *os.File
	name     segmentNaming
	path     string
	maxSize  int64
	maxAge   time.Duration
	compress bool
	key      ed25519.PrivateKey
	keyID    string
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	onFsync  func()

	mu             sync.Mutex
	f              *os.File
	w              *bufio.Writer
	size           int64
	firstSeq       uint64 // first seq in the active file; 0: empty
	openedAt       time.Time
	seq            uint64
	prev           [sha256.Size]byte
	unsigned       int // lines since the last checkpoint
	lastCheckpoint time.Time
	unsynced       bool
	closed         bool
	line           []byte
	compressing    map[string]bool
	bg             sync.WaitGroup
}

var (
	_ Sink   = (*FileSink)(nil)
	_ Syncer = (*FileSink)(nil)
)

// NewFileSink opens (creating with mode 0600, its folder with 0700) the
// active file of cfg, which must have passed Defaults and Validate with a
// resolved signing key, and continues the chain from the last line
// written, in the active file or the last closed segment. A torn final
// line (a crash in the middle of a write that was never acknowledged) is
// cut off. It fails when the last line is not a chain line: the log was
// changed and must be looked at with Verify first.
func NewFileSink(cfg FileConfig, o FileOptions) (*FileSink, error) {
	key, err := ParsePrivateKey(cfg.SigningKey.Value())
	if err != nil {
		return nil, fmt.Errorf("audit file sink: signing key: %w", err)
	}
	s := &FileSink{
		name:        namingOf(cfg.Path),
		path:        cfg.Path,
		maxSize:     cfg.MaxSize,
		maxAge:      cfg.MaxAge,
		compress:    cfg.Compress == nil || *cfg.Compress,
		key:         key,
		keyID:       KeyID(key.Public().(ed25519.PublicKey)),
		interval:    cfg.CheckpointInterval,
		now:         o.Now,
		log:         o.Logger,
		onFsync:     o.OnFsync,
		compressing: map[string]bool{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.onFsync == nil {
		s.onFsync = func() {}
	}
	if s.interval <= 0 {
		s.interval = DefaultCheckpointInterval
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultFileMaxSize
	}
	if s.maxAge <= 0 {
		s.maxAge = DefaultFileMaxAge
	}
	if err := os.MkdirAll(s.name.dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	if s.lock, err = lockFile(s.path + ".lock"); err != nil {
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	if err := s.open(); err != nil {
		s.lock.Close()
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	s.lastCheckpoint = s.now()
	if s.compress {
		s.compressLeftovers()
	}
	return s, nil
}

// open opens the active file and recovers the chain state.
func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	var last []byte
	if st.Size() > 0 {
		line, end, err := tailOfFile(f, st.Size())
		if err != nil {
			f.Close()
			return err
		}
		if end < st.Size() {
			s.log.Warn("audit file sink: cutting off a torn final line", slog.String("path", s.path), slog.Int64("bytes", st.Size()-end))
			if err := f.Truncate(end); err != nil {
				f.Close()
				return err
			}
		}
		last = line
		if end > 0 {
			first, err := firstLineOf(f)
			if err != nil {
				f.Close()
				return err
			}
			p, err := parseLine(first)
			if err != nil {
				f.Close()
				return fmt.Errorf("%s line 1: %w; check it with crmgate audit verify", s.path, err)
			}
			s.firstSeq = p.seq
			s.openedAt = time.UnixMilli(lineTime(first))
		}
		s.size = end
	}
	if last == nil {
		closed, err := s.name.listClosed()
		if err != nil {
			f.Close()
			return err
		}
		if len(closed) > 0 {
			if last, err = lastLineOf(closed[len(closed)-1].path); err != nil {
				f.Close()
				return err
			}
		}
	}
	if last != nil {
		p, err := parseLine(last)
		if err != nil {
			f.Close()
			return fmt.Errorf("the last line of the log: %w; check it with crmgate audit verify", err)
		}
		s.seq = p.seq
		s.prev = sha256.Sum256(last)
	}
	s.f = f
	s.w = bufio.NewWriterSize(f, 256<<10)
	return nil
}

// lineTime returns the first "time" value of a line in milliseconds, 0
// when there is none.
func lineTime(line []byte) int64 {
	i := bytes.Index(line, []byte(`"time":`))
	if i < 0 {
		return 0
	}
	v, _, err := parseUint(line[i+len(`"time":`):])
	if err != nil {
		return 0
	}
	return int64(v)
}

// Name returns "file".
func (s *FileSink) Name() string { return FileSinkName }

// ErrSinkClosed is returned by a sink's Write after Close.
var ErrSinkClosed = errors.New("audit sink closed")

// Write appends the batch, each event as one chained line, rotating first
// when the active file is full or old, and a checkpoint when the last one
// is older than the checkpoint interval. On error nothing of the batch
// stays in the file: it is cut back to where it was, so a retry writes
// the batch again without breaking the chain.
func (s *FileSink) Write(_ context.Context, batch [][]byte) error {
	for _, ev := range batch {
		if len(ev) < 2 || ev[0] != '{' || ev[len(ev)-1] != '}' || bytes.IndexByte(ev, '\n') >= 0 {
			return fmt.Errorf("audit file sink: an event is not a one-line JSON object")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrSinkClosed
	}
	now := s.now()
	if s.firstSeq != 0 && (s.size >= s.maxSize || now.Sub(s.openedAt) >= s.maxAge) {
		if err := s.rotateLocked(now); err != nil {
			return err
		}
	}
	mark := s.markLocked()
	for _, ev := range batch {
		if ev[1] == '}' {
			// {}: no fields to follow prev.
			ev = []byte(`{"time":0}`)
		}
		s.line = appendLinePrefix(s.line[:0], s.seq+1, &s.prev)
		s.line = append(s.line, ev[1:]...)
		if err := s.appendLocked(s.line, now); err != nil {
			return s.rollbackLocked(mark, err)
		}
	}
	if s.unsigned > 0 && now.Sub(s.lastCheckpoint) >= s.interval {
		if err := s.checkpointLocked(now); err != nil {
			return s.rollbackLocked(mark, err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return s.rollbackLocked(mark, err)
	}
	s.unsynced = true
	return nil
}

// appendLocked writes one complete line and advances the chain.
func (s *FileSink) appendLocked(line []byte, now time.Time) error {
	if _, err := s.w.Write(line); err != nil {
		return err
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return err
	}
	s.seq++
	s.prev = sha256.Sum256(line)
	if s.firstSeq == 0 {
		s.firstSeq = s.seq
		s.openedAt = now
	}
	s.size += int64(len(line)) + 1
	s.unsigned++
	return nil
}

// mark is the chain state at the start of a Write, restored on failure.
type mark struct {
	size, seqFirst, seq uint64
	prev                [sha256.Size]byte
	unsigned            int
	openedAt            time.Time
	lastCheckpoint      time.Time
}

func (s *FileSink) markLocked() mark {
	return mark{uint64(s.size), s.firstSeq, s.seq, s.prev, s.unsigned, s.openedAt, s.lastCheckpoint}
}

func (s *FileSink) rollbackLocked(m mark, cause error) error {
	s.w.Reset(s.f)
	if err := s.f.Truncate(int64(m.size)); err != nil {
		// The file now holds lines the chain state does not know of:
		// stop rather than write a broken chain.
		s.closed = true
		return fmt.Errorf("audit file sink: %w; and cutting back the failed write: %v (the sink is closed)", cause, err)
	}
	s.size, s.firstSeq, s.seq, s.prev, s.unsigned, s.openedAt, s.lastCheckpoint = int64(m.size), m.seqFirst, m.seq, m.prev, m.unsigned, m.openedAt, m.lastCheckpoint
	return fmt.Errorf("audit file sink: %w", cause)
}

// checkpointLocked appends a signed checkpoint of the current head.
func (s *FileSink) checkpointLocked(now time.Time) error {
	s.line = appendCheckpoint(s.line[:0], s.seq+1, &s.prev, now.UnixMilli(), s.key, s.keyID)
	if err := s.appendLocked(s.line, now); err != nil {
		return err
	}
	s.unsigned = 0
	s.lastCheckpoint = now
	return nil
}

// Sync makes everything written durable (fsync). Callers waiting for the
// same fsync share it: the pipeline calls Sync once per batch.
func (s *FileSink) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *FileSink) syncLocked() error {
	if s.f == nil {
		return ErrSinkClosed
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("audit file sink: %w", err)
	}
	if !s.unsynced {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit file sink: fsync: %w", err)
	}
	s.unsynced = false
	s.onFsync()
	return nil
}

// tick signs the head when the interval has passed with unsigned lines,
// and rotates a file that grew old without events. The pipeline calls it
// about once a second.
func (s *FileSink) tick(now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.firstSeq != 0 && now.Sub(s.openedAt) >= s.maxAge {
		return s.rotateLocked(now)
	}
	if s.unsigned > 0 && now.Sub(s.lastCheckpoint) >= s.interval {
		m := s.markLocked()
		if err := s.checkpointLocked(now); err != nil {
			return s.rollbackLocked(m, err)
		}
		return s.syncLocked()
	}
	return nil
}

// rotateLocked closes the active file with a checkpoint, renames it to
// its closed name and starts a new active file.
func (s *FileSink) rotateLocked(now time.Time) error {
	if s.unsigned > 0 {
		m := s.markLocked()
		if err := s.checkpointLocked(now); err != nil {
			return s.rollbackLocked(m, err)
		}
	}
	s.unsynced = true
	if err := s.syncLocked(); err != nil {
		return err
	}
	closedPath := s.name.closedName(s.firstSeq)
	if err := os.Rename(s.path, closedPath); err != nil {
		return fmt.Errorf("audit file sink: rotating: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		// Keep writing to the renamed file: the chain is intact, only
		// its name is odd until the next rotation works.
		s.log.Error("audit file sink: cannot start a new file", slog.String("path", s.path), slog.String("err", err.Error()))
		return fmt.Errorf("audit file sink: rotating: %w", err)
	}
	old := s.f
	s.f = f
	s.w.Reset(f)
	s.size, s.firstSeq = 0, 0
	if err := old.Close(); err != nil {
		s.log.Warn("audit file sink: closing a segment", slog.String("err", err.Error()))
	}
	syncDir(s.name.dir)
	if s.compress {
		s.startCompress(closedPath)
	}
	return nil
}

// Close signs the head, fsyncs and closes the file, then waits for
// compressions in progress. Calls after the first return nil.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed || s.f == nil {
		s.mu.Unlock()
		s.bg.Wait()
		return nil
	}
	var errs []error
	if s.unsigned > 0 {
		if err := s.checkpointLocked(s.now()); err != nil {
			errs = append(errs, err)
		}
		s.unsynced = true
	}
	errs = append(errs, s.syncLocked(), s.f.Close())
	s.f = nil
	s.closed = true
	s.mu.Unlock()
	s.bg.Wait()
	s.lock.Close()
	return errors.Join(errs...)
}

// startCompress gzips a closed segment in the background. Call with mu
// held.
func (s *FileSink) startCompress(plain string) {
	if s.compressing[plain] {
		return
	}
	s.compressing[plain] = true
	s.bg.Go(func() {
		if err := compressFile(plain); err != nil {
			s.log.Error("audit file sink: compressing a closed segment", slog.String("path", plain), slog.String("err", err.Error()))
		}
		s.mu.Lock()
		delete(s.compressing, plain)
		s.mu.Unlock()
	})
}

// compressLeftovers compresses closed segments left plain by an earlier
// run and removes interrupted compressions.
func (s *FileSink) compressLeftovers() {
	closed, err := s.name.listClosed()
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range closed {
		os.Remove(c.path + ".gz.tmp")
		if c.gz {
			// A plain copy left by a compression interrupted after
			// its rename.
			plain := c.path[:len(c.path)-len(".gz")]
			os.Remove(plain)
			continue
		}
		s.startCompress(c.path)
	}
}

// compressFile writes plain.gz (through a temporary file, fsynced and
// renamed), keeps plain's modification time on it and removes plain.
func compressFile(plain string) error {
	in, err := os.Open(plain)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := plain + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Sync(), out.Close())
	if err == nil {
		err = os.Chtimes(tmp, st.ModTime(), st.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, plain+".gz")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(namingOf(plain).dir)
	return os.Remove(plain)
}

// syncDir fsyncs a folder so that a rename or new file in it survives a
// crash. Errors are ignored: some file systems do not support it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// DeletedSegment is a closed segment removed by retention.
type DeletedSegment struct {
	Path     string
	FirstSeq uint64
	// LastSeq is the seq of its last line (the next segment's first
	// seq minus one).
	LastSeq  uint64
	Bytes    int64
	Modified time.Time
}

// deleteOlder removes closed segments last written before cutoff, oldest
// first and only while each is older: the remaining files stay one
// unbroken chain. The active file and segments being compressed are kept.
func (s *FileSink) deleteOlder(cutoff time.Time) ([]DeletedSegment, error) {
	closed, err := s.name.listClosed()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	nextFirst := s.firstSeq
	if nextFirst == 0 {
		nextFirst = s.seq + 1
	}
	busy := make(map[string]bool, len(s.compressing))
	for k := range s.compressing {
		busy[k] = true
	}
	s.mu.Unlock()
	var out []DeletedSegment
	var errs []error
	for i, c := range closed {
		if busy[c.path] {
			break
		}
		st, err := os.Stat(c.path)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if !st.ModTime().Before(cutoff) {
			break
		}
		last := nextFirst - 1
		if i+1 < len(closed) {
			last = closed[i+1].firstSeq - 1
		}
		if err := os.Remove(c.path); err != nil {
			errs = append(errs, err)
			break
		}
		out = append(out, DeletedSegment{Path: c.path, FirstSeq: c.firstSeq, LastSeq: last, Bytes: st.Size(), Modified: st.ModTime()})
	}
	if len(out) > 0 {
		syncDir(s.name.dir)
	}
	return out, errors.Join(errs...)
}

// formatSeq is used in messages.
func formatSeq(n uint64) string { return strconv.FormatUint(n, 10) }
