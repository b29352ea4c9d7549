package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func filesConfig(cert, key string) Config {
	return Config{Source: SourceFiles, Files: FilesConfig{Cert: cert, Key: key}}
}

func TestFilesStartErrors(t *testing.T) {
	now := time.Now()
	mt := newMinter(t, now)
	certPEM, keyPEM, _ := mt.issue(now)
	_, otherKey, _ := mt.issue(now)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})

	tests := []struct {
		name       string
		cert, key  []byte // nil: the file does not exist
		wantPrefix string
		wantText   string
		wantIs     error
	}{
		{name: "certificate missing", key: keyPEM, wantPrefix: "files.cert: open ", wantIs: fs.ErrNotExist},
		{name: "key missing", cert: certPEM, wantPrefix: "files.key: open ", wantIs: fs.ErrNotExist},
		{name: "certificate not PEM", cert: []byte("hello"), key: keyPEM, wantPrefix: "files.cert: ", wantText: "no CERTIFICATE PEM block found"},
		{name: "certificate is a key", cert: keyPEM, key: keyPEM, wantPrefix: "files.cert: ", wantText: "no CERTIFICATE PEM block found"},
		{name: "key not PEM", cert: certPEM, key: []byte("hello"), wantPrefix: "files.key: ", wantText: "no PRIVATE KEY PEM block found"},
		{name: "key of another certificate", cert: certPEM, key: otherKey, wantPrefix: "files.key: ", wantText: "private key does not match certificate", wantIs: ErrKeyMismatch},
		{name: "encrypted key", cert: certPEM, key: encrypted, wantPrefix: "files.key: ", wantText: "encrypted private keys are not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			if tc.cert != nil {
				writeFile(t, certFile, tc.cert)
			}
			if tc.key != nil {
				writeFile(t, keyFile, tc.key)
			}
			m := New(filesConfig(certFile, keyFile), nil, clock(now))
			err := m.Start(t.Context())
			defer m.Close()
			switch {
			case err == nil:
				t.Fatalf("Start() = nil, want an error")
			case !strings.HasPrefix(err.Error(), tc.wantPrefix) || !strings.Contains(err.Error(), tc.wantText):
				t.Errorf("Start() = %q, want %q...%q", err, tc.wantPrefix, tc.wantText)
			case tc.wantIs != nil && !errors.Is(err, tc.wantIs):
				t.Errorf("Start() = %v, want errors.Is %v", err, tc.wantIs)
			}
		})
	}
}

func TestFilesValidityWarnings(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name     string
		issuedAt time.Duration // relative to the clock; certificates last 365 days
		want     string        // "" for no warning
	}{
		{name: "valid", issuedAt: -day},
		{name: "expired", issuedAt: -400 * day, want: "certificate has expired"},
		{name: "expires soon", issuedAt: -350 * day, want: "certificate expires soon"},
		{name: "not yet valid", issuedAt: 2 * day, want: "certificate is not valid yet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mt := newMinter(t, t0.Add(-500*day))
			certPEM, keyPEM, _ := mt.issue(t0.Add(tc.issuedAt))
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "cert.pem"), certPEM)
			writeFile(t, filepath.Join(dir, "key.pem"), keyPEM)
			log, buf := testLogger(t)
			startManager(t, New(filesConfig(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), log, clock(t0)))
			got := buf.String()
			for _, w := range []string{"certificate has expired", "certificate expires soon", "certificate is not valid yet"} {
				if strings.Contains(got, w) != (w == tc.want) {
					t.Errorf("log contains %q = %t, want %t; log:\n%s", w, !(w == tc.want), w == tc.want, got)
				}
			}
		})
	}
}

// filesLayout lays out a certificate and key and replaces them.
type filesLayout struct {
	// init writes the first pair and returns the paths to configure.
	init func(t *testing.T, dir string, cert, key []byte) (certFile, keyFile string)
	// replace installs a new pair the way the layout's tools do.
	replace func(t *testing.T, dir string, cert, key []byte)
}

// plainFiles are two files in a folder, replaced by writing new files next
// to them and renaming them over the old ones, as editors and certbot do.
var plainFiles = filesLayout{
	init: func(t *testing.T, dir string, cert, key []byte) (string, string) {
		writeFile(t, filepath.Join(dir, "cert.pem"), cert)
		writeFile(t, filepath.Join(dir, "key.pem"), key)
		return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	},
	replace: func(t *testing.T, dir string, cert, key []byte) {
		for name, data := range map[string][]byte{"cert.pem": cert, "key.pem": key} {
			if data == nil {
				continue
			}
			if err := writeFileAtomic(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	},
}

// secretVolume is how Kubernetes mounts a Secret: tls.crt and tls.key are
// symlinks through ..data, a symlink to a timestamped folder, and an
// update swaps ..data to a new folder with one rename.
var secretVolume = filesLayout{
	init: func(t *testing.T, dir string, cert, key []byte) (string, string) {
		writeVersion(t, dir, "..v1", cert, key)
		if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"tls.crt", "tls.key"} {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		return filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	},
	replace: func(t *testing.T, dir string, cert, key []byte) {
		old, err := os.Readlink(filepath.Join(dir, "..data"))
		if err != nil {
			t.Fatal(err)
		}
		next := "..v" + time.Now().Format("150405.000000000")
		oldKey, _ := os.ReadFile(filepath.Join(dir, old, "tls.key"))
		if key == nil {
			key = oldKey
		}
		writeVersion(t, dir, next, cert, key)
		if err := os.Symlink(next, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
	},
}

func writeVersion(t *testing.T, dir, version string, cert, key []byte) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, version), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, version, "tls.crt"), cert)
	writeFile(t, filepath.Join(dir, version, "tls.key"), key)
}

func TestFilesReload(t *testing.T) {
	now := time.Now()
	mt := newMinter(t, now.Add(-time.Hour))
	tests := []struct {
		name   string
		layout filesLayout
		// bad, when set, makes the new files unusable; the old pair must
		// keep serving until a good pair follows.
		bad    func(cert, key, otherKey []byte) (badCert, badKey []byte)
		wantIs error
	}{
		{name: "rename", layout: plainFiles},
		{name: "kubernetes secret update", layout: secretVolume},
		{name: "garbage certificate", layout: plainFiles, bad: func(_, key, _ []byte) ([]byte, []byte) {
			return []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), nil
		}},
		{name: "new certificate with the old key", layout: plainFiles, wantIs: ErrKeyMismatch, bad: func(cert, _, _ []byte) ([]byte, []byte) {
			return cert, nil
		}},
		{name: "new key with the old certificate", layout: plainFiles, wantIs: ErrKeyMismatch, bad: func(_, key, _ []byte) ([]byte, []byte) {
			return nil, key
		}},
		{name: "kubernetes secret with a wrong key", layout: secretVolume, wantIs: ErrKeyMismatch, bad: func(cert, _, otherKey []byte) ([]byte, []byte) {
			return cert, otherKey
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			log, _ := testLogger(t)
			dir := t.TempDir()
			cert1, key1, leaf1 := mt.issue(now)
			certFile, keyFile := tc.layout.init(t, dir, cert1, key1)
			m := New(filesConfig(certFile, keyFile), log, time.Now)
			startManager(t, m)
			ln := listenLoopback(t)
			serveTLS(t, ln, m.TLSConfig, nil)
			client := &tls.Config{RootCAs: mt.pool, ServerName: "localhost"}
			checkServed(t, ln.Addr().String(), client, leaf1)

			if tc.bad != nil {
				cert2, key2, _ := mt.issue(now)
				_, otherKey, _ := mt.issue(now)
				badCert, badKey := tc.bad(cert2, key2, otherKey)
				tc.layout.replace(t, dir, badCert, badKey)
				st := waitStatus(ctx, t, m, "a failed reload", func(st Status) bool { return st.Err != nil })
				if tc.wantIs != nil && !errors.Is(st.Err, tc.wantIs) {
					t.Errorf("Status().Err = %v, want %v", st.Err, tc.wantIs)
				}
				if st.Serial != 1 || !st.Leaf.Equal(leaf1) {
					t.Errorf("Status() = serial %d, leaf %v; want the first certificate still", st.Serial, st.Leaf.SerialNumber)
				}
				checkServed(t, ln.Addr().String(), client, leaf1)
			}

			// A good pair is picked up, also after a bad one.
			cert3, key3, leaf3 := mt.issue(now)
			tc.layout.replace(t, dir, cert3, key3)
			st := waitStatus(ctx, t, m, "a reload", func(st Status) bool { return st.Leaf.Equal(leaf3) && st.Err == nil })
			if st.Serial < 2 {
				t.Errorf("Status().Serial = %d, want at least 2", st.Serial)
			}
			checkServed(t, ln.Addr().String(), client, leaf3)
		})
	}
}

// checkServed does a handshake and checks that the server presented want.
func checkServed(t *testing.T, addr string, client *tls.Config, want *x509.Certificate) {
	t.Helper()
	cs, err := handshake(addr, client)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if got := cs.PeerCertificates[0]; !got.Equal(want) {
		t.Errorf("served certificate serial %x, want %x", got.SerialNumber, want.SerialNumber)
	}
}
