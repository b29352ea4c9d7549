package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// The spool of one sink: append-only segment files NNN.spool in the
// sink's folder, one event per line, and a cursor file naming the first
// event not yet delivered. Segments wholly delivered are deleted; when the
// sink has caught up, the spool is emptied. It is written and read under
// its lane's lock.

const (
	spoolExt     = ".spool"
	cursorFile   = "cursor"
	maxSegSize   = 8 << 20
	minSegSize   = 64 << 10
	spoolBufSize = 64 << 10
)

// errSpoolFull: the disk budget is spent.
var errSpoolFull = errors.New("audit spool: disk budget spent")

// budget is the spool's disk budget, shared by all sinks' spools.
type budget struct {
	max      int64
	used     atomic.Int64
	refusing atomic.Bool
}

// full reports whether the budget is spent: an event did not fit, and
// since then less than an eighth of it was freed.
func (b *budget) full() bool { return b.refusing.Load() || b.used.Load() >= b.max }

// spent records that an event did not fit.
func (b *budget) spent() { b.refusing.Store(true) }

// freed clears spent once an eighth of the budget is free again, so that
// the gateway does not flap between refusing and accepting.
func (b *budget) freed() {
	if b.refusing.Load() && b.used.Load() <= b.max-b.max/8 {
		b.refusing.Store(false)
	}
}

type spoolSeg struct {
	num  uint64
	size int64
}

type spool struct {
	dir     string
	b       *budget
	segSize int64
	onFsync func()

	segs []spoolSeg // in order; the last is the one written to

	w       *os.File
	bw      *bufio.Writer
	written uint64 // bytes appended in this process: group-commit positions

	// Read-ahead position (r) and delivered position (c).
	r          *os.File
	br         *bufio.Reader
	rNum, cNum uint64
	rOff, cOff int64

	gs groupSync
}

func openSpool(dir string, b *budget, onFsync func()) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &spool{dir: dir, b: b, onFsync: onFsync}
	s.segSize = min(maxSegSize, max(minSegSize, b.max/16))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(dir, name))
			continue
		}
		numStr, ok := strings.CutSuffix(name, spoolExt)
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(numStr, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, err
		}
		s.segs = append(s.segs, spoolSeg{num, info.Size()})
	}
	slices.SortFunc(s.segs, func(a, b spoolSeg) int { return cmpUint(a.num, b.num) })
	if n := len(s.segs); n > 0 {
		// Cut a torn final line off the last segment.
		last := &s.segs[n-1]
		f, err := os.OpenFile(s.segPath(last.num), os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		_, end, err := tailOfFile(f, last.size)
		if err == nil && end < last.size {
			err = f.Truncate(end)
			last.size = end
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	s.cNum, s.cOff = s.readCursor()
	for _, sg := range s.segs {
		b.used.Add(sg.size)
	}
	if !s.pendingLocked() {
		s.resetLocked()
		return s, nil
	}
	s.rNum, s.rOff = s.cNum, s.cOff
	return s, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *spool) segPath(num uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", num, spoolExt))
}

// readCursor returns the saved delivered position, or the start of the
// first segment; a cursor past what exists is clamped.
func (s *spool) readCursor() (uint64, int64) {
	if len(s.segs) == 0 {
		return 0, 0
	}
	first := s.segs[0]
	raw, err := os.ReadFile(filepath.Join(s.dir, cursorFile))
	if err != nil {
		return first.num, 0
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		return first.num, 0
	}
	num, err1 := strconv.ParseUint(f[0], 10, 64)
	off, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || off < 0 {
		return first.num, 0
	}
	for _, sg := range s.segs {
		if sg.num == num {
			return num, min(off, sg.size)
		}
	}
	if num < first.num {
		return first.num, 0
	}
	last := s.segs[len(s.segs)-1]
	return last.num, last.size
}

// pendingLocked reports whether events remain after the delivered
// position.
func (s *spool) pendingLocked() bool {
	for _, sg := range s.segs {
		if sg.num > s.cNum && sg.size > 0 || sg.num == s.cNum && sg.size > s.cOff {
			return true
		}
	}
	return s.bw != nil && s.bw.Buffered() > 0
}

// appendLocked adds one event; it returns the group-commit position after
// it. Over budget it returns errSpoolFull unless force is set (events
// already accepted, moved from the memory queue).
func (s *spool) appendLocked(ev []byte, force bool) (uint64, error) {
	n := int64(len(ev)) + 1
	if !force && s.b.used.Load()+n > s.b.max {
		s.b.spent()
		return 0, errSpoolFull
	}
	if s.w == nil || s.segs[len(s.segs)-1].size >= s.segSize {
		if err := s.rollLocked(); err != nil {
			return 0, err
		}
	}
	s.bw.Write(ev)
	s.bw.WriteByte('\n')
	s.segs[len(s.segs)-1].size += n
	s.b.used.Add(n)
	s.written += uint64(n)
	return s.written, nil
}

// rollLocked starts a new segment, fsyncing and closing the current one.
func (s *spool) rollLocked() error {
	num := uint64(1)
	if n := len(s.segs); n > 0 {
		num = s.segs[n-1].num + 1
	}
	if s.w != nil {
		if err := s.bw.Flush(); err != nil {
			return err
		}
		if err := s.w.Sync(); err != nil {
			return err
		}
		s.onFsync()
		s.w.Close()
		s.w = nil
	} else if n := len(s.segs); n > 0 {
		// Reopened after a restart: append to the last segment.
		num = s.segs[n-1].num
		if s.segs[n-1].size >= s.segSize {
			num++
		}
	}
	f, err := os.OpenFile(s.segPath(num), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if n := len(s.segs); n == 0 || s.segs[n-1].num != num {
		s.segs = append(s.segs, spoolSeg{num: num})
		if len(s.segs) == 1 {
			s.cNum, s.cOff, s.rNum, s.rOff = num, 0, num, 0
		}
		syncDir(s.dir)
	}
	s.w = f
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(f, spoolBufSize)
	} else {
		s.bw.Reset(f)
	}
	return nil
}

// flushLocked hands buffered appends to the operating system and returns
// the file to fsync for them (nil when nothing is open).
func (s *spool) flushLocked() (*os.File, uint64, error) {
	if s.bw == nil || s.w == nil {
		return nil, s.written, nil
	}
	return s.w, s.written, s.bw.Flush()
}

// readLocked reads up to max events after the read-ahead position.
func (s *spool) readLocked(maxEvents int) ([][]byte, error) {
	if _, _, err := s.flushLocked(); err != nil {
		return nil, err
	}
	var out [][]byte
	for len(out) < maxEvents {
		if s.r == nil {
			i := slices.IndexFunc(s.segs, func(sg spoolSeg) bool { return sg.num >= s.rNum })
			if i < 0 {
				return out, nil
			}
			if s.segs[i].num != s.rNum {
				s.rNum, s.rOff = s.segs[i].num, 0
			}
			f, err := os.Open(s.segPath(s.rNum))
			if err != nil {
				return out, err
			}
			if _, err := f.Seek(s.rOff, io.SeekStart); err != nil {
				f.Close()
				return out, err
			}
			s.r = f
			if s.br == nil {
				s.br = bufio.NewReaderSize(f, spoolBufSize)
			} else {
				s.br.Reset(f)
			}
		}
		line, err := s.br.ReadBytes('\n')
		if err == nil {
			s.rOff += int64(len(line))
			out = append(out, line[:len(line)-1])
			continue
		}
		if err != io.EOF {
			return out, err
		}
		if len(line) > 0 {
			// Not flushed whole: read it next time.
			if _, err := s.r.Seek(s.rOff, io.SeekStart); err != nil {
				return out, err
			}
			s.br.Reset(s.r)
			return out, nil
		}
		if s.rNum == s.segs[len(s.segs)-1].num {
			return out, nil
		}
		s.r.Close()
		s.r = nil
		s.rNum++
		s.rOff = 0
	}
	return out, nil
}

// commitLocked marks everything read so far as delivered: whole
// segments before it are deleted and the cursor saved.
func (s *spool) commitLocked() {
	s.cNum, s.cOff = s.rNum, s.rOff
	for len(s.segs) > 1 && s.segs[0].num < s.cNum {
		s.b.used.Add(-s.segs[0].size)
		os.Remove(s.segPath(s.segs[0].num))
		s.segs = s.segs[1:]
	}
	s.b.freed()
	s.saveCursor()
}

func (s *spool) saveCursor() {
	if len(s.segs) == 0 {
		os.Remove(filepath.Join(s.dir, cursorFile))
		return
	}
	tmp := filepath.Join(s.dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", s.cNum, s.cOff), 0o600); err == nil {
		os.Rename(tmp, filepath.Join(s.dir, cursorFile))
	}
}

// caughtUpLocked reports whether everything appended has been read.
func (s *spool) caughtUpLocked() bool {
	if len(s.segs) == 0 {
		return true
	}
	last := s.segs[len(s.segs)-1]
	return s.rNum == last.num && s.rOff >= last.size && (s.bw == nil || s.bw.Buffered() == 0)
}

// emptyLocked reports whether the spool holds nothing undelivered.
func (s *spool) emptyLocked() bool { return !s.pendingLocked() }

// resetLocked deletes every segment and the cursor: all was delivered.
func (s *spool) resetLocked() {
	if s.w != nil {
		s.bw.Flush()
		s.w.Close()
		s.w = nil
	}
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	for _, sg := range s.segs {
		s.b.used.Add(-sg.size)
		os.Remove(s.segPath(sg.num))
	}
	s.segs = nil
	s.b.freed()
	s.cNum, s.cOff, s.rNum, s.rOff = 0, 0, 0, 0
	os.Remove(filepath.Join(s.dir, cursorFile))
}

// closeLocked flushes, fsyncs and closes the files, keeping what is not
// delivered for the next start.
func (s *spool) closeLocked() error {
	var errs []error
	if s.w != nil {
		errs = append(errs, s.bw.Flush(), s.w.Sync(), s.w.Close())
		s.w = nil
	}
	if s.r != nil {
		s.r.Close()
		s.r = nil
	}
	if len(s.segs) > 0 {
		s.saveCursor()
	}
	return errors.Join(errs...)
}

// groupSync shares fsyncs among waiters: the first waiter that finds no
// fsync running does one for everyone written so far; the others wait for
// it and are done if it covered their position (group commit).
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	syncing bool
	synced  uint64
}

// wait returns once position pos is durable. doSync flushes and fsyncs and
// returns the position it covered.
func (g *groupSync) wait(pos uint64, doSync func() (uint64, error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	for g.synced < pos {
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		g.mu.Unlock()
		upto, err := doSync()
		g.mu.Lock()
		g.syncing = false
		g.cond.Broadcast()
		if err != nil {
			return err
		}
		g.synced = max(g.synced, upto)
	}
	return nil
}

// isClosedFile reports an fsync of a file closed meanwhile (rolled, which
// fsyncs first, or emptied after delivery).
func isClosedFile(err error) bool { return errors.Is(err, os.ErrClosed) }
