package apikey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// fileFormat is the version of the file layout; a file with another
// version is refused rather than half-understood.
const fileFormat = 1

// maxFileSize bounds the file read: far beyond any real key list, small
// enough that a wrong path (a disk image, a log) is refused quickly.
const maxFileSize = 64 << 20

// DefaultCheckInterval is how often, at most, FileStore.Get looks at the
// file's metadata to notice a write by another process.
const DefaultCheckInterval = 250 * time.Millisecond

// FileStore keeps API keys in one JSON file, the embedded default:
//
//	{"version": 1, "keys": [{"id": "…", "name": "…", "hash": "…", …}, …]}
//
// The gateway and the `crmgate apikey` command may both write it: every
// write takes an exclusive flock on a lock file beside it (<file>.lock),
// reads the file afresh, applies the change and replaces the file
// atomically (a temporary file in the same folder, fsync, rename, fsync of
// the folder), so writers never lose each other's changes and readers
// never see half a file. The file is created with mode 0600; a file that
// others may read is logged as a warning.
//
// Reads are served from a parsed snapshot in memory. The snapshot is
// replaced when the file changes on disk: at once when Start's fsnotify
// watch on the folder reports it, and in any case on the first Get after
// CheckInterval that finds the file's identity, size or modification time
// changed. A revocation written by another process therefore takes effect
// within CheckInterval (250 ms by default) of the next request. A file
// that does not parse on such a reload is logged and the last good
// snapshot kept; a missing file is an empty store (deleting the file
// revokes every key). A file that does not parse when the store is opened
// is an error, and no write ever replaces a file that does not parse.
//
// Unknown fields are refused, so a misspelt hand edit ("disabeld": true)
// fails loudly instead of silently doing nothing.
type FileStore struct {
	path     string
	lockPath string
	interval time.Duration
	log      *slog.Logger
	epoch    time.Time // monotonic origin of lastCheck

	snap      atomic.Pointer[fileSnapshot]
	lastCheck atomic.Int64 // nanoseconds since epoch

	// reloadMu orders publications of snapshots, so an older read never
	// replaces a newer one.
	reloadMu sync.Mutex
	lastErr  string // the reload error last logged; under reloadMu
	// writeMu serialises this process's writers before the flock.
	writeMu sync.Mutex

	watchMu sync.Mutex
	watcher *fsnotify.Watcher
	done    chan struct{}
}

var _ Store = (*FileStore)(nil)

// FileOptions configures a FileStore.
type FileOptions struct {
	// CheckInterval is the least time between two looks at the file's
	// metadata on Get; 0 means DefaultCheckInterval.
	CheckInterval time.Duration
	// Logger receives reload trouble; nil discards.
	Logger *slog.Logger
}

// fileSnapshot is one parsed state of the file. It is never modified
// after it is published.
type fileSnapshot struct {
	records map[string]*Record
	sum     [sha256.Size]byte
	stamp   fileStamp
}

// fileStamp identifies one version of the file on disk: writers replace
// the file by rename, so a write changes the inode, and a hand edit in
// place changes the size or modification time.
type fileStamp struct {
	info os.FileInfo // nil: no file
}

func (a fileStamp) same(b fileStamp) bool {
	if a.info == nil || b.info == nil {
		return a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) && a.info.ModTime().Equal(b.info.ModTime()) && a.info.Size() == b.info.Size()
}

// OpenFileStore reads the key file at path (a missing file is an empty
// store, created by the first write). A file that cannot be read or does
// not parse is an error. Call Start to watch the file, Close to stop.
func OpenFileStore(path string, o FileOptions) (*FileStore, error) {
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	path = filepath.Clean(path)
	s := &FileStore{path: path, lockPath: path + ".lock", interval: o.CheckInterval, log: o.Logger, epoch: time.Now()}
	snap, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("apikey: key file %s: %w", path, err)
	}
	s.warnMode(snap.stamp)
	s.snap.Store(snap)
	return s, nil
}

// Path returns the file's path.
func (s *FileStore) Path() string { return s.path }

// Start watches the file's folder with fsnotify, so that a write by
// another process is picked up at once rather than on the next Get after
// CheckInterval. If the watch cannot be set up it logs why and returns
// nil: the metadata check on Get keeps the store correct, only slower to
// notice. The watch ends with Close or when ctx ends.
func (s *FileStore) Start(ctx context.Context) error {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watcher != nil {
		return errors.New("apikey: FileStore started twice")
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(s.path)); err != nil {
			w.Close()
		}
	}
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "apikey: cannot watch the key file's folder; changes are noticed on use",
			slog.String("file", s.path), slog.Any("err", err))
		return nil
	}
	s.watcher, s.done = w, make(chan struct{})
	go s.watch(ctx, w, s.done)
	return nil
}

func (s *FileStore) watch(ctx context.Context, w *fsnotify.Watcher, done chan struct{}) {
	defer close(done)
	base := filepath.Base(s.path)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Base(ev.Name) == base {
				s.reload(true)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// Events were lost (queue overflow): look at the file anyway.
			s.log.LogAttrs(ctx, slog.LevelWarn, "apikey: watching the key file", slog.String("file", s.path), slog.Any("err", err))
			s.reload(true)
		}
	}
}

// Close stops the watch started by Start.
func (s *FileStore) Close() error {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watcher == nil {
		return nil
	}
	err := s.watcher.Close()
	<-s.done
	s.watcher = nil
	return err
}

// Get implements Store from the snapshot, after looking at the file's
// metadata if CheckInterval has passed since the last look.
func (s *FileStore) Get(ctx context.Context, id string) (*Record, error) {
	s.maybeReload()
	r, ok := s.snap.Load().records[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r, nil
}

// List implements Store. It looks at the file first, whatever the
// interval, so listings are never stale.
func (s *FileStore) List(ctx context.Context) ([]*Record, error) {
	s.reload(true)
	snap := s.snap.Load()
	out := make([]*Record, 0, len(snap.records))
	for _, r := range snap.records {
		out = append(out, r)
	}
	return out, nil
}

// Create implements Store.
func (s *FileStore) Create(ctx context.Context, r *Record) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s.modify(ctx, "create", func(recs map[string]*Record) (bool, error) {
		if _, ok := recs[r.ID]; ok {
			return false, ErrExists
		}
		recs[r.ID] = r.Clone()
		return true, nil
	})
}

// Update implements Store.
func (s *FileStore) Update(ctx context.Context, r *Record, expect uint64) error {
	if err := r.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return s.modify(ctx, "update", func(recs map[string]*Record) (bool, error) {
		cur, ok := recs[r.ID]
		switch {
		case !ok:
			return false, ErrNotFound
		case cur.Version != expect:
			return false, ErrConflict
		}
		next := r.Clone()
		if cur.LastUsed.After(next.LastUsed) {
			next.LastUsed = cur.LastUsed
		}
		recs[r.ID] = next
		return true, nil
	})
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, id string) error {
	return s.modify(ctx, "delete", func(recs map[string]*Record) (bool, error) {
		if _, ok := recs[id]; !ok {
			return false, nil
		}
		delete(recs, id)
		return true, nil
	})
}

// MarkUsed implements Store with one write of the file for the batch.
func (s *FileStore) MarkUsed(ctx context.Context, used map[string]time.Time) error {
	return s.modify(ctx, "mark used", func(recs map[string]*Record) (bool, error) {
		changed := false
		for id, t := range used {
			if r, ok := recs[id]; ok && t.After(r.LastUsed) {
				// Only this write holds the freshly read map.
				r.LastUsed = t
				changed = true
			}
		}
		return changed, nil
	})
}

func (s *FileStore) unavailable(op string, err error) error {
	return fmt.Errorf("%w: key file %s: %s: %w", ErrUnavailable, s.path, op, err)
}

// modify runs change on the records read afresh under the file lock and,
// if it reports a change, replaces the file. change owns the map and the
// records in it: they come from this read alone.
func (s *FileStore) modify(ctx context.Context, op string, change func(map[string]*Record) (bool, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return s.unavailable(op+": lock", err)
	}
	defer unlock()
	snap, err := s.read()
	if err != nil {
		// Never write over a file that does not parse: it may hold keys
		// that a repair would bring back.
		return s.unavailable(op, err)
	}
	changed, err := change(snap.records)
	if err != nil || !changed {
		s.publish(snap)
		return err
	}
	data, err := encodeFile(snap.records)
	if err != nil {
		return s.unavailable(op, err)
	}
	stamp, err := s.writeAtomic(data)
	if err != nil {
		return s.unavailable(op, err)
	}
	s.publish(&fileSnapshot{records: snap.records, sum: sha256.Sum256(data), stamp: stamp})
	return nil
}

// publish makes snap the one Get serves.
func (s *FileStore) publish(snap *fileSnapshot) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.snap.Store(snap)
}

// maybeReload looks at the file if CheckInterval has passed since the
// last look. Only one caller looks; the others serve the snapshot.
func (s *FileStore) maybeReload() {
	now := int64(time.Since(s.epoch))
	last := s.lastCheck.Load()
	if now-last < int64(s.interval) || !s.lastCheck.CompareAndSwap(last, now) {
		return
	}
	s.reload(false)
}

// reload replaces the snapshot if the file changed. With wait unset it
// gives up when another reload is running.
func (s *FileStore) reload(wait bool) {
	if wait {
		s.reloadMu.Lock()
	} else if !s.reloadMu.TryLock() {
		return
	}
	defer s.reloadMu.Unlock()
	cur := s.snap.Load()
	var stamp fileStamp
	switch fi, err := os.Stat(s.path); {
	case err == nil:
		stamp.info = fi
	case !errors.Is(err, fs.ErrNotExist):
		s.reloadFailed(err)
		return
	}
	if stamp.same(cur.stamp) {
		return
	}
	next, err := s.read()
	switch {
	case next == nil:
		s.reloadFailed(err)
		return
	case err != nil:
		// Remember this version of the file so it is not parsed again
		// until it changes, but keep serving the last good records.
		s.snap.Store(&fileSnapshot{records: cur.records, sum: cur.sum, stamp: next.stamp})
		s.reloadFailed(err)
		return
	}
	if next.sum == cur.sum {
		next.records = cur.records
	} else {
		s.warnMode(next.stamp)
		if next.stamp.info == nil {
			s.log.Warn("apikey: the key file is gone; no key is valid until it is back", slog.String("file", s.path))
		} else {
			s.log.Info("apikey: key file reloaded", slog.String("file", s.path), slog.Int("keys", len(next.records)))
		}
	}
	s.snap.Store(next)
	if s.lastErr != "" {
		s.lastErr = ""
		s.log.Info("apikey: key file readable again", slog.String("file", s.path))
	}
}

// reloadFailed logs err once until it changes or a reload succeeds.
func (s *FileStore) reloadFailed(err error) {
	if msg := err.Error(); msg != s.lastErr {
		s.lastErr = msg
		s.log.Error("apikey: key file not reloaded; keeping the keys last read", slog.String("file", s.path), slog.Any("err", err))
	}
}

func (s *FileStore) warnMode(st fileStamp) {
	if st.info != nil && st.info.Mode().Perm()&0o077 != 0 {
		s.log.Warn("apikey: the key file is readable by others than its owner; chmod 600 it",
			slog.String("file", s.path), slog.String("mode", st.info.Mode().Perm().String()))
	}
}

// read reads and parses the file. A missing file is an empty snapshot.
// For a file that does not parse it returns the snapshot without records
// (for its stamp) and the error; for one it cannot read, nil and the
// error.
func (s *FileStore) read() (*fileSnapshot, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &fileSnapshot{records: map[string]*Record{}, sum: sha256.Sum256(nil)}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The stamp of the open file matches the bytes read, even if the path
	// is replaced meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	snap := &fileSnapshot{stamp: fileStamp{info: fi}, sum: sha256.Sum256(data)}
	if len(data) > maxFileSize {
		return snap, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	recs, err := decodeFile(data)
	if err != nil {
		return snap, err
	}
	snap.records = recs
	return snap, nil
}

// fileDoc is the file's layout.
type fileDoc struct {
	Version int       `json:"version"`
	Keys    []*Record `json:"keys"`
}

// decodeFile parses and checks the file. An empty file holds no keys.
func decodeFile(data []byte) (map[string]*Record, error) {
	recs := map[string]*Record{}
	if len(bytes.TrimSpace(data)) == 0 {
		return recs, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a key file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not a key file: data after the JSON object")
	}
	if doc.Version != fileFormat {
		return nil, fmt.Errorf("format version %d, this gateway reads version %d", doc.Version, fileFormat)
	}
	for i, r := range doc.Keys {
		if r == nil {
			return nil, fmt.Errorf("keys[%d]: null", i)
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if _, dup := recs[r.ID]; dup {
			return nil, fmt.Errorf("keys[%d]: key %s appears twice", i, r.ID)
		}
		recs[r.ID] = r
	}
	return recs, nil
}

// encodeFile writes the records sorted by id, indented for people who
// read the file.
func encodeFile(recs map[string]*Record) ([]byte, error) {
	doc := fileDoc{Version: fileFormat, Keys: make([]*Record, 0, len(recs))}
	for _, r := range recs {
		doc.Keys = append(doc.Keys, r)
	}
	slices.SortFunc(doc.Keys, func(a, b *Record) int { return strings.Compare(a.ID, b.ID) })
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// writeAtomic replaces the file with data: a temporary file (mode 0600)
// in the same folder, fsync, rename over the file, fsync of the folder. A
// crash leaves either the old file or the new one, never a mix.
func (s *FileStore) writeAtomic(data []byte) (fileStamp, error) {
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fileStamp{}, err
	}
	tmp := f.Name()
	fail := func(err error) (fileStamp, error) {
		f.Close()
		os.Remove(tmp)
		return fileStamp{}, err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	// Rename keeps the inode, size and modification time: this is the
	// stamp of the file once it is in place.
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fileStamp{}, err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		os.Remove(tmp)
		return fileStamp{}, err
	}
	if err := syncDir(dir); err != nil {
		return fileStamp{}, err
	}
	return fileStamp{info: fi}, nil
}
