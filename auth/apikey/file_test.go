package apikey

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpenFileStore(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string // "-" for no file
		keys    int
		wantErr string
	}{
		{"missing file", "-", 0, ""},
		{"empty file", "", 0, ""},
		{"no keys", `{"version": 1, "keys": []}`, 0, ""},
		{"one key", `{"version": 1, "keys": [{"id": "aaaaaaaaaaaa", "name": "x", "created": "2026-03-01T09:00:00Z", "hash": "` + b64(testPepper("x")) + `", "version": 1}]}`, 1, ""},
		{"not JSON", `{"version": 1, "keys": [`, 0, "not a key file"},
		{"other format version", `{"version": 2, "keys": []}`, 0, "format version 2"},
		// A misspelt hand edit must fail loudly, not leave the key enabled.
		{"unknown field", `{"version": 1, "keys": [{"id": "aaaaaaaaaaaa", "name": "x", "hash": "` + b64(testPepper("x")) + `", "disabeld": true}]}`, 0, "unknown field"},
		{"bad id", `{"version": 1, "keys": [{"id": "AAAA", "hash": "` + b64(testPepper("x")) + `"}]}`, 0, "not a key id"},
		{"no hash", `{"version": 1, "keys": [{"id": "aaaaaaaaaaaa"}]}`, 0, "hash is 0 bytes"},
		{"duplicate id", `{"version": 1, "keys": [{"id": "aaaaaaaaaaaa", "hash": "` + b64(testPepper("x")) + `"}, {"id": "aaaaaaaaaaaa", "hash": "` + b64(testPepper("y")) + `"}]}`, 0, "appears twice"},
		{"null key", `{"version": 1, "keys": [null]}`, 0, "null"},
		{"trailing data", `{"version": 1, "keys": []} {}`, 0, "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := keyFile(t)
			if tc.content != "-" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := OpenFileStore(path, FileOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenFileStore = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("OpenFileStore = %v", err)
			}
			if l, _ := s.List(context.Background()); len(l) != tc.keys {
				t.Errorf("List = %d keys, want %d", len(l), tc.keys)
			}
		})
	}
}

// b64 is how encoding/json writes []byte.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestFileStoreWrites(t *testing.T) {
	path := keyFile(t)
	s := openFile(t, path, FileOptions{})
	ctx := context.Background()
	id := ids(3)
	for _, i := range id {
		if err := s.Create(ctx, record(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("key file mode %v, want 0600", m)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "apikeys.json apikeys.json.lock"; strings.Join(names, " ") != want {
		t.Errorf("folder holds %v, want %s (no temporary files left)", names, want)
	}
	// A fresh store reads what was written.
	again := openFile(t, path, FileOptions{})
	if l, _ := again.List(ctx); len(l) != 3 {
		t.Errorf("List of a fresh store = %d keys, want 3", len(l))
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "{\n  \"version\": 1,") {
		t.Errorf("file starts %.40q, want indented JSON with the version first", data)
	}
}

// Regression (lost update): the CLI and the gateway write the same file;
// the flock and the fresh read under it keep both writers' changes.
func TestFileStoreTwoWriters(t *testing.T) {
	path := keyFile(t)
	a, b := openFile(t, path, FileOptions{}), openFile(t, path, FileOptions{})
	ctx := context.Background()
	id := ids(40)
	var wg sync.WaitGroup
	for i, k := range id {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if err := s.Create(ctx, record(k, 1)); err != nil {
				t.Errorf("Create(%s) = %v", k, err)
			}
		})
	}
	wg.Wait()
	for _, s := range []*FileStore{a, b} {
		if l, _ := s.List(ctx); len(l) != len(id) {
			t.Errorf("List = %d keys, want %d", len(l), len(id))
		}
	}
}

func TestFileStoreReload(t *testing.T) {
	path := keyFile(t)
	var logs logBuffer
	gw := openFile(t, path, FileOptions{CheckInterval: 20 * time.Millisecond, Logger: logs.Logger()})
	cli := openFile(t, path, FileOptions{})
	ctx := context.Background()
	id := ids(2)
	if err := cli.Create(ctx, record(id[0], 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the gateway sees the CLI's key", func() bool {
		_, err := gw.Get(ctx, id[0])
		return err == nil
	})

	// A corrupt file on reload keeps the last good snapshot and logs.
	if err := os.WriteFile(path, []byte(`{"version": 1, "keys": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the reload error is logged", func() bool {
		gw.Get(ctx, id[0])
		return strings.Contains(logs.String(), "key file not reloaded")
	})
	if _, err := gw.Get(ctx, id[0]); err != nil {
		t.Errorf("Get after a corrupt reload = %v, want the last good record", err)
	}
	// It is logged once, not on every check.
	time.Sleep(60 * time.Millisecond)
	gw.Get(ctx, id[0])
	if n := strings.Count(logs.String(), "key file not reloaded"); n != 1 {
		t.Errorf("the same reload error was logged %d times, want 1", n)
	}
	// No write replaces a file that does not parse.
	if err := cli.Create(ctx, record(id[1], 1)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create on a corrupt file = %v, want ErrUnavailable", err)
	}

	// Repaired (by hand, in place): picked up.
	good := fmt.Sprintf(`{"version": 1, "keys": [{"id": %q, "name": "x", "created": "2026-03-01T09:00:00Z", "hash": %q, "version": 1}]}`, id[1], b64(testPepper("x")))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the repaired file is read", func() bool {
		_, err := gw.Get(ctx, id[1])
		return err == nil
	})
	if _, err := gw.Get(ctx, id[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(key not in the repaired file) = %v, want ErrNotFound", err)
	}
	if !strings.Contains(logs.String(), "readable by others") {
		t.Errorf("a 0644 key file was not warned about; log:\n%s", logs.String())
	}

	// Deleting the file revokes every key.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the deleted file empties the store", func() bool {
		_, err := gw.Get(ctx, id[1])
		return errors.Is(err, ErrNotFound)
	})
}

// The watch picks up a change without waiting for the metadata check.
func TestFileStoreWatch(t *testing.T) {
	path := keyFile(t)
	gw := openFile(t, path, FileOptions{CheckInterval: time.Hour})
	if err := gw.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cli := openFile(t, path, FileOptions{})
	ctx := context.Background()
	id := ids(1)[0]
	if err := cli.Create(ctx, record(id, 1)); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Second, "the watch reloads", func() bool {
		_, err := gw.Get(ctx, id)
		return err == nil
	})
	t.Logf("watch picked up the write in %s", took)
	if err := gw.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}
