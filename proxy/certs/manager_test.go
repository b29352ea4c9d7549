package certs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/crmgate/crmgate/fielderr"
)

func TestManagerLifecycle(t *testing.T) {
	t.Run("start validates", func(t *testing.T) {
		m := New(Config{Source: SourceFiles}, nil, nil)
		err := m.Start(t.Context())
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Path != "files.cert" {
			t.Errorf("Start() = %v, want a validation error for files.cert", err)
		}
	})
	t.Run("start twice", func(t *testing.T) {
		m := New(devCAConfig(t.TempDir()), nil, nil)
		startManager(t, m)
		if err := m.Start(t.Context()); err == nil {
			t.Error("second Start() = nil, want an error")
		}
	})
	t.Run("close before start and twice", func(t *testing.T) {
		m := New(devCAConfig(t.TempDir()), nil, nil)
		for i := range 2 {
			if err := m.Close(); err != nil {
				t.Errorf("Close() #%d = %v", i+1, err)
			}
		}
		if err := m.Start(t.Context()); err == nil {
			t.Error("Start() after Close = nil, want an error")
		}
	})
	t.Run("new has no side effects", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "tls")
		New(devCAConfig(dir), nil, nil)
		New(Config{Source: SourceACME, ACME: ACMEConfig{Storage: dir}}, nil, nil)
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("New created %s: %v", dir, err)
		}
	})
	t.Run("files watcher stops on close", func(t *testing.T) {
		now := time.Now()
		mt := newMinter(t, now)
		cert, key, leaf := mt.issue(now)
		dir := t.TempDir()
		certFile, keyFile := plainFiles.init(t, dir, cert, key)
		m := New(filesConfig(certFile, keyFile), nil, nil)
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
		// After Close the last certificate still serves; changes are no
		// longer picked up.
		plainFiles.replace(t, dir, []byte("garbage"), nil)
		time.Sleep(2 * filesDebounce)
		if st := m.Status(); st.Err != nil || !st.Leaf.Equal(leaf) {
			t.Errorf("Status() after Close and a change = %+v", st)
		}
	})
}

func TestACMEStartErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "roots.txt")
	writeFile(t, notPEM, []byte("not a certificate"))
	aFile := filepath.Join(dir, "file")
	writeFile(t, aFile, nil)
	tests := []struct {
		name string
		cfg  ACMEConfig
		want string
	}{
		{name: "roots file missing", cfg: ACMEConfig{TrustedRootsFile: filepath.Join(dir, "nope.pem"), Storage: dir}, want: "acme.trusted_roots_file: open "},
		{name: "roots file without certificates", cfg: ACMEConfig{TrustedRootsFile: notPEM, Storage: dir}, want: "acme.trusted_roots_file: " + notPEM + ": no PEM certificates found"},
		{name: "storage is a file", cfg: ACMEConfig{Storage: filepath.Join(aFile, "acme")}, want: "acme.storage: mkdir "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Email, tc.cfg.Domains = "ops@crmgate.test", []string{"crm.test"}
			m := New(Config{Source: SourceACME, ACME: tc.cfg}, nil, nil)
			err := m.Start(context.Background())
			defer m.Close()
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("Start() = %v, want %q...", err, tc.want)
			}
		})
	}
}

// certmagic's zap logs reach the gateway's slog handler with their level,
// logger name and fields.
func TestSlogCore(t *testing.T) {
	tests := []struct {
		name string
		log  func(*zap.Logger)
		want string
	}{
		{name: "info with fields", log: func(l *zap.Logger) {
			l.Named("obtain").Info("certificate obtained", zap.String("identifier", "crm.test"), zap.Int("attempt", 2))
		}, want: "level=INFO msg=\"certificate obtained\" logger=obtain attempt=2 identifier=crm.test\n"},
		{name: "error", log: func(l *zap.Logger) {
			l.Error("could not get certificate", zap.Error(errors.New("rate limited")))
		}, want: "level=ERROR msg=\"could not get certificate\" error=\"rate limited\"\n"},
		{name: "with", log: func(l *zap.Logger) { l.With(zap.String("ca", "pebble")).Warn("slow") }, want: "level=WARN msg=slow ca=pebble\n"},
		{name: "debug is below the handler's level", log: func(l *zap.Logger) { l.Debug("noise") }, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b logBuffer
			h := slog.NewTextHandler(&b, &slog.HandlerOptions{
				Level: slog.LevelInfo,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			tc.log(zap.New(slogCore{h: h}))
			if d := cmp.Diff(b.String(), tc.want); d != "" {
				t.Errorf("log (-got +want):\n%s", d)
			}
		})
	}
}
