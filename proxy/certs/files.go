package certs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// filesDebounce is how long the files must be quiet before a reload: tools
// replace the certificate and the key one after the other, and reading
// between the two would pair a new certificate with the old key.
const filesDebounce = 250 * time.Millisecond

// filesSource serves a PEM certificate and key from disk and reloads them
// when they change.
type filesSource struct {
	cfg      FilesConfig
	log      *slog.Logger
	now      func() time.Time
	state    *state
	debounce time.Duration

	cur     atomic.Pointer[filePair]
	watcher *fsnotify.Watcher
	done    chan struct{} // closed when watch returns
}

// filePair is a loaded certificate and the digest of the bytes it came
// from, to skip reloads that would change nothing.
type filePair struct {
	cert *tls.Certificate
	sum  [sha256.Size]byte
}

func (f *filesSource) start(ctx context.Context) error {
	p, err := f.load()
	if err != nil {
		return err
	}
	f.install(p)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("files: watching for changes: %w", err)
	}
	f.watcher = w
	// Watch the folders, not the files: editors, cert-manager and
	// Kubernetes Secret volumes replace files by rename or by swapping a
	// symlink, and a watch on the old file would never fire again.
	for _, dir := range f.dirs() {
		if err := w.Add(dir); err != nil {
			w.Close()
			f.watcher = nil
			return fmt.Errorf("files: watching %s: %w", dir, err)
		}
	}
	f.done = make(chan struct{})
	go f.watch(ctx)
	return nil
}

func (f *filesSource) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if p := f.cur.Load(); p != nil {
		return p.cert, nil
	}
	return nil, errNotStarted
}

func (f *filesSource) close() error {
	if f.watcher == nil {
		return nil
	}
	err := f.watcher.Close()
	<-f.done
	return err
}

// load reads and checks both files; it returns a usable pair or an error,
// never half of one.
func (f *filesSource) load() (*filePair, error) {
	certPEM, err := os.ReadFile(f.cfg.Cert)
	if err != nil {
		return nil, fmt.Errorf("files.cert: %w", err)
	}
	keyPEM, err := os.ReadFile(f.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("files.key: %w", err)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0}) // a NUL never occurs in PEM, so the split is unambiguous
	h.Write(keyPEM)
	p := &filePair{}
	h.Sum(p.sum[:0])
	if cur := f.cur.Load(); cur != nil && bytes.Equal(cur.sum[:], p.sum[:]) {
		p.cert = cur.cert
		return p, nil
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, fmt.Errorf("files.cert: %s: %w", f.cfg.Cert, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("files.key: %s: %w", f.cfg.Key, err)
	}
	if p.cert, err = keyPair(chain, key); err != nil {
		return nil, fmt.Errorf("files.key: %s: %w %s", f.cfg.Key, err, f.cfg.Cert)
	}
	warnValidity(f.log, chain, f.now())
	return p, nil
}

func (f *filesSource) install(p *filePair) {
	f.cur.Store(p)
	leaf := p.cert.Leaf
	f.log.Info("certificate loaded", "cert_file", f.cfg.Cert, "subject", leaf.Subject.String(),
		"dns_names", leaf.DNSNames, "not_after", leaf.NotAfter, "serial", leaf.SerialNumber.Text(16))
	f.state.installed(leaf)
}

// reload replaces the served pair when the files hold a different, valid
// one; on any error the current pair keeps serving.
func (f *filesSource) reload() {
	p, err := f.load()
	if err != nil {
		f.log.Error("certificate files not reloaded; the current certificate keeps serving", "error", err)
		f.state.failed(err)
		return
	}
	if p.cert == f.cur.Load().cert {
		// Unchanged bytes; clear an error left by a bad version that has
		// since been put back.
		if f.state.get().Err != nil {
			f.state.update(func(st *Status) { st.Err = nil })
		}
		return
	}
	f.install(p)
}

// dirs lists the folders to watch: those of the configured paths and,
// where a path is a symlink, of its target, so that a target rewritten in
// place is noticed too.
func (f *filesSource) dirs() []string {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range []string{f.cfg.Cert, f.cfg.Key} {
		cands := []string{filepath.Dir(p)}
		if t, err := filepath.EvalSymlinks(p); err == nil {
			cands = append(cands, filepath.Dir(t))
		}
		for _, d := range cands {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

func (f *filesSource) watch(ctx context.Context) {
	defer close(f.done)
	timer := time.NewTimer(f.debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-f.watcher.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(f.debounce)
		case err, ok := <-f.watcher.Errors:
			if !ok {
				return
			}
			f.log.Warn("watching certificate files", "error", err)
		case <-timer.C:
			f.reload()
			// A symlink may now point into a new folder; adding a watched
			// folder again is harmless, and removed folders drop out of
			// the watch list by themselves.
			for _, d := range f.dirs() {
				if err := f.watcher.Add(d); err != nil {
					f.log.Warn("watching certificate files", "dir", d, "error", err)
				}
			}
		}
	}
}
