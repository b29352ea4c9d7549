package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/secret"
)

func writeEvents(t testing.TB, s *FileSink, from, n int) {
	t.Helper()
	enc := encoder{product: "test", instance: "i", now: time.Now}
	for i := from; i < from+n; i++ {
		e := reqEvent(i)
		if err := s.Write(context.Background(), [][]byte{enc.appendEvent(nil, &e)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A file sink's log verifies, and keeps its chain across rotation,
// compression and a restart.
func TestFileSinkRotationChain(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := fileConfig(dir)
	cfg.MaxSize = 4096
	_, pub := testKey()
	s, err := NewFileSink(cfg, FileOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 0, 30)
	clock.Add(2 * time.Minute)
	writeEvents(t, s, 30, 30)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart continues the chain.
	s, err = NewFileSink(cfg, FileOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 60, 10)
	clock.Add(25 * time.Hour)
	if err := s.tick(clock.Now()); err != nil { // rotation by age
		t.Fatal(err)
	}
	writeEvents(t, s, 70, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Segments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("Segments = %v, want several rotated segments", files)
	}
	for _, f := range files[:len(files)-1] {
		if !strings.HasSuffix(f, ".log.gz") {
			t.Errorf("closed segment %s is not compressed", f)
		}
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	r, err := Verify(files, pub)
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if r.Events != 71 || r.FirstSeq != 1 || r.Unsigned != 0 || r.Files != len(files) {
		t.Errorf("Verify report = %+v, want 71 events from seq 1, all signed", r)
	}
	// Every closed segment ends with a checkpoint that links to the next.
	for _, f := range files[:len(files)-1] {
		last, err := lastLineOf(f)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := parseLine(last); !p.isCheckpoint {
			t.Errorf("%s does not end with a checkpoint", f)
		}
	}
}

// tamperCase changes a verified log and says what Verify must report.
type tamperCase struct {
	name   string
	change func(lines []string) []string
	kind   ProblemKind
	line   int
}

func TestVerifyDetectsTampering(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(dir)
	cfg.CheckpointInterval = time.Hour
	_, pub := testKey()
	s, err := NewFileSink(cfg, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	orig := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(orig) != 11 {
		t.Fatalf("%d lines, want 10 events and a checkpoint", len(orig))
	}
	if _, err := Verify([]string{cfg.Path}, pub); err != nil {
		t.Fatalf("Verify(untouched) = %v", err)
	}
	for _, tc := range []tamperCase{
		{"edited", func(l []string) []string { l[3] = strings.Replace(l[3], `"alice"`, `"mallory"`, 1); return l }, ProblemEdited, 4},
		{"edited field order", func(l []string) []string { l[3] = strings.Replace(l[3], `"status_id":1`, `"status_id":2`, 1); return l }, ProblemEdited, 4},
		{"deleted", func(l []string) []string { return append(l[:4], l[5:]...) }, ProblemDeleted, 5},
		{"reordered", func(l []string) []string { l[4], l[5] = l[5], l[4]; return l }, ProblemReordered, 5},
		{"duplicated", func(l []string) []string { return append(l[:5], append([]string{l[4]}, l[5:]...)...) }, ProblemInserted, 6},
		{"inserted forged copy with the next seq", func(l []string) []string {
			forged := strings.Replace(l[4], `"seq":5,`, `"seq":6,`, 1)
			return append(l[:5], append([]string{forged}, l[5:]...)...)
		}, ProblemInserted, 6},
		{"malformed", func(l []string) []string { l[2] = l[2][:40]; return l }, ProblemMalformed, 3},
		{"truncated after the last checkpoint", func(l []string) []string { return l[:7] }, ProblemMissingCheckpoint, 7},
		{"checkpoint removed", func(l []string) []string { return l[:10] }, ProblemMissingCheckpoint, 10},
		{"bad signature", func(l []string) []string {
			i := strings.Index(l[10], `"sig":"`) + 7
			b := []byte(l[10])
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			l[10] = string(b)
			return l
		}, ProblemBadSignature, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.change(append([]string(nil), orig...))
			path := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
			r, err := Verify([]string{path}, pub)
			if err == nil || r.Problem == nil {
				t.Fatalf("Verify = nil, want %s at line %d", tc.kind, tc.line)
			}
			if r.Problem.Kind != tc.kind || r.Problem.Line != tc.line {
				t.Errorf("Verify = %v, want %s at line %d", err, tc.kind, tc.line)
			}
		})
	}
}

// Attack: an attacker edits an event and recomputes every later hash, so
// that the chain links; without the signing key the checkpoint cannot be
// re-signed.
func TestVerifyForgedChainFailsSignature(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(dir)
	_, pub := testKey()
	s, err := NewFileSink(cfg, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 0, 5)
	s.Close()
	raw, _ := os.ReadFile(cfg.Path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	lines[1] = strings.Replace(lines[1], `"allow":true`, `"allow":false`, 1)
	// Rehash: each line's prev becomes the hash of the forged previous.
	for i := 2; i < len(lines); i++ {
		p, err := parseLine([]byte(lines[i-1]))
		if err != nil {
			t.Fatal(err)
		}
		_ = p
		h := sha256Hex(lines[i-1])
		j := strings.Index(lines[i], `"prev":"`) + 8
		lines[i] = lines[i][:j] + h + lines[i][j+64:]
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	r, err := Verify([]string{path}, pub)
	if err == nil || r.Problem.Kind != ProblemBadSignature || r.Problem.Line != 6 {
		t.Fatalf("Verify(rehashed forgery) = %v, want bad_signature at line 6", err)
	}
	// A checkpoint signed with another key does not verify either.
	_, otherPub := ed25519Key(t)
	if _, err := Verify([]string{cfg.Path}, otherPub); err == nil {
		t.Fatal("Verify with another key = nil, want bad_signature")
	}
}

// A segment missing from the middle of the list is reported.
func TestVerifyMissingSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(dir)
	cfg.MaxSize = 4096
	cfg.Compress = new(bool)
	_, pub := testKey()
	s, err := NewFileSink(cfg, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 0, 40)
	s.Close()
	files, _ := Segments(cfg.Path)
	if len(files) < 3 {
		t.Fatalf("%d files, want 3 or more", len(files))
	}
	gap := append(append([]string(nil), files[:1]...), files[2:]...)
	r, err := Verify(gap, pub)
	if err == nil || r.Problem.Kind != ProblemDeleted || r.Problem.File != files[2] || r.Problem.Line != 1 {
		t.Fatalf("Verify(without the second segment) = %v, want deleted at %s:1", err, files[2])
	}
	// Starting later (retention) is fine; FirstPrev says where.
	r, err = Verify(files[1:], pub)
	if err != nil || r.FirstSeq <= 1 || r.FirstPrev == strings.Repeat("0", 64) {
		t.Fatalf("Verify(from the second segment) = %+v, %v", r, err)
	}
}

// A torn final line (a crash mid-write) is cut off at restart and the
// chain continues.
func TestFileSinkTornTail(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(dir)
	_, pub := testKey()
	s, _ := NewFileSink(cfg, FileOptions{})
	writeEvents(t, s, 0, 3)
	s.Close()
	f, _ := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND, 0)
	fmt.Fprint(f, `{"seq":5,"prev":"00`)
	f.Close()
	s, err := NewFileSink(cfg, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 3, 2)
	s.Close()
	if r, err := Verify([]string{cfg.Path}, pub); err != nil || r.Events != 5 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
}

// A signing key rotated by a restart: the chain runs on in the same
// file, the checkpoints after the restart name the new key, and the log
// verifies with both public keys, not with either alone.
func TestVerifyRotatedSigningKey(t *testing.T) {
	dir := t.TempDir()
	cfg := fileConfig(dir)
	_, oldPub := testKey()
	s, err := NewFileSink(cfg, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 0, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newSeed := []byte("vutsrqponmlkjihgfedcba9876543210")
	newPub := ed25519.NewKeyFromSeed(newSeed).Public().(ed25519.PublicKey)
	cfg.SigningKey = secret.FromValue([]byte(hex.EncodeToString(newSeed)))
	if s, err = NewFileSink(cfg, FileOptions{}); err != nil {
		t.Fatal(err)
	}
	writeEvents(t, s, 5, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Segments(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Verify(files, oldPub, newPub)
	if err != nil || r.Events != 10 || r.Checkpoints < 2 {
		t.Fatalf("Verify(old, new) = %+v, %v; want 10 events, intact", r, err)
	}
	for name, pub := range map[string]ed25519.PublicKey{"old": oldPub, "new": newPub} {
		if _, err := Verify(files, pub); err == nil {
			t.Errorf("Verify(%s key only) = nil, want bad_signature", name)
		} else if r, _ := Verify(files, pub); r.Problem == nil || r.Problem.Kind != ProblemBadSignature || !strings.Contains(r.Problem.Detail, "not with a given key") {
			t.Errorf("Verify(%s key only) problem = %+v", name, r.Problem)
		}
	}
	// An extra key does not break a valid log.
	_, otherPub := ed25519Key(t)
	if _, err := Verify(files, oldPub, newPub, otherPub); err != nil {
		t.Fatalf("Verify(old, new, other) = %v", err)
	}
	if _, err := Verify(files); err == nil {
		t.Error("Verify without keys = nil")
	}
}
