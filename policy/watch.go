package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the policy folder whenever something in it changes, until
// ctx ends; it returns nil then, or an error if the folder cannot be
// watched at all. Changes are collected for Config.Debounce before one
// reload, so that a multi-file edit is compiled once; a reload whose files
// hash to the active revision does nothing. Call it after Load, on its own
// goroutine; it does nothing when Config.Reload is off.
//
// Every folder below Dir is watched, folders created later included. The
// folder itself must stay: replacing Dir (rather than its content) is not
// seen. Kubernetes ConfigMap volumes, which swap a ..data link inside the
// folder, are seen.
func (e *Engine) Watch(ctx context.Context) error {
	if e.cfg.Reload == ReloadOff {
		<-ctx.Done()
		return nil
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
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// A new folder is watched at once: what is written in it
			// before this is read by the reload scheduled below, what
			// is written after raises events of its own.
			if ev.Has(fsnotify.Create) && !strings.HasPrefix(filepath.Base(ev.Name), ".") {
				if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
					if err := watchTree(w, ev.Name); err != nil {
						e.log.LogAttrs(ctx, slog.LevelWarn, "policy watch incomplete",
							slog.String("dir", e.cfg.Dir), slog.String("err", err.Error()))
					}
				}
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
