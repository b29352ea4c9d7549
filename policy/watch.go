package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the policy set whenever its source changes, until ctx
// ends; it returns nil then, or an error if the source cannot be watched
// at all. Call it after Load, on its own goroutine; it does nothing when
// Config.Reload is off. A reload whose content hashes to the active
// revision does nothing.
//
// A folder: changes are collected for Config.Debounce before one reload,
// so that a multi-file edit is compiled once. Every folder below Dir is
// watched, folders created later included. The folder itself must stay:
// replacing Dir (rather than its content) is not seen. Kubernetes
// ConfigMap volumes, which swap a ..data link inside the folder, are seen.
//
// A bundle file: its folder is watched for changes to that name (a write,
// or a rename over it, as atomic replacement does) and to Kubernetes'
// ..data links, debounced likewise.
//
// A bundle URL: it is fetched every BundleConfig.PollInterval, give or
// take 10% so that replicas spread their requests.
func (e *Engine) Watch(ctx context.Context) error {
	if e.cfg.Reload == ReloadOff {
		<-ctx.Done()
		return nil
	}
	if b := e.cfg.Bundle; b != nil {
		if b.URL != "" {
			e.poll(ctx, b.PollInterval)
			return nil
		}
		return e.watchFile(ctx, b.File)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	defer w.Close()
	root, err := filepath.EvalSymlinks(e.cfg.Dir)
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	if err := watchTree(w, root); err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	return e.reloadOnEvents(ctx, w, func(ev fsnotify.Event) bool {
		// A new folder is watched at once: what is written in it
		// before this is read by the reload scheduled below, what is
		// written after raises events of its own.
		if ev.Has(fsnotify.Create) && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
			if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
				if err := watchTree(w, ev.Name); err != nil {
					e.log.LogAttrs(ctx, slog.LevelWarn, "policy watch incomplete",
						slog.String("dir", e.cfg.Dir), slog.String("err", err.Error()))
				}
			}
		}
		return true
	})
}

// watchFile reloads when the bundle file is written or replaced. The
// folder is watched rather than the file, whose watch would end with the
// inode that an atomic rename replaces.
func (e *Engine) watchFile(ctx context.Context, file string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	defer w.Close()
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	dir, base := filepath.Split(abs)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("policy watch: %w", err)
	}
	return e.reloadOnEvents(ctx, w, func(ev fsnotify.Event) bool {
		name := filepath.Base(ev.Name)
		return name == base || strings.HasPrefix(name, "..")
	})
}

// reloadOnEvents reloads Config.Debounce after the last event of w that
// relevant accepts (mode changes apart), until ctx ends.
func (e *Engine) reloadOnEvents(ctx context.Context, w *fsnotify.Watcher, relevant func(fsnotify.Event) bool) error {
	var (
		timer   *time.Timer
		pending <-chan time.Time
	)
	schedule := func() {
		if timer == nil {
			timer = time.NewTimer(e.cfg.Debounce)
		} else {
			timer.Reset(e.cfg.Debounce)
		}
		pending = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			// A mode change alone changes no content.
			if ev.Op == fsnotify.Chmod || !relevant(ev) {
				continue
			}
			schedule()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			e.log.LogAttrs(ctx, slog.LevelWarn, "policy watch error; reloading to catch up",
				slog.String("dir", e.cfg.Dir), slog.String("err", err.Error()))
			schedule()
		case <-pending:
			pending = nil
			e.Reload(ctx)
		}
	}
}

// poll reloads every interval, ±10%, until ctx ends.
func (e *Engine) poll(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(jitter(interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return
			}
			e.Reload(ctx)
			t.Reset(jitter(interval))
		}
	}
}

// jitter spreads d uniformly over ±10%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

// watchTree adds root and every non-hidden folder below it to w; adding a
// folder already watched is harmless.
func watchTree(w *fsnotify.Watcher, root string) error {
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.Add(p); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}
