package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func devCAConfig(dir string, hosts ...string) Config {
	return Config{Source: SourceDevCA, DevCA: DevCAConfig{Dir: dir, Hosts: hosts}}
}

func TestDevCACreate(t *testing.T) {
	log, _ := testLogger(t)
	dir := filepath.Join(t.TempDir(), "tls")
	m := New(devCAConfig(dir), log, clock(t0))
	startManager(t, m)

	if got, want := m.CAFile(), filepath.Join(dir, "ca.pem"); got != want {
		t.Errorf("CAFile() = %q, want %q", got, want)
	}
	perms := map[string]fs.FileMode{}
	for _, name := range []string{"", "ca.pem", "ca-key.pem", "cert.pem", "key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		perms[name] = fi.Mode().Perm()
	}
	wantPerms := map[string]fs.FileMode{"": 0o700, "ca.pem": 0o644, "ca-key.pem": 0o600, "cert.pem": 0o644, "key.pem": 0o600}
	if d := cmp.Diff(perms, wantPerms); d != "" {
		t.Errorf("permissions (-got +want):\n%s", d)
	}

	ca := readCert(t, m.CAFile())
	gotCA := certSummary{
		IsCA: ca.IsCA, MaxPathLen: ca.MaxPathLen, MaxPathLenZero: ca.MaxPathLenZero, KeyUsage: ca.KeyUsage,
		NotAfter: ca.NotAfter, Curve: curveOf(ca),
	}
	wantCA := certSummary{IsCA: true, MaxPathLen: 0, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign, NotAfter: t0.Add(10 * 365 * 24 * time.Hour), Curve: "P-256"}
	if d := cmp.Diff(gotCA, wantCA); d != "" {
		t.Errorf("CA (-got +want):\n%s", d)
	}

	leaf := m.Status().Leaf
	if leaf == nil {
		t.Fatal("Status().Leaf = nil after Start")
	}
	gotLeaf := certSummary{
		KeyUsage: leaf.KeyUsage, ExtKeyUsage: leaf.ExtKeyUsage, NotAfter: leaf.NotAfter, Curve: curveOf(leaf),
		Hosts: leafHosts(leaf),
	}
	wantLeaf := certSummary{
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		NotAfter: t0.Add(365 * 24 * time.Hour), Curve: "P-256", Hosts: []string{"127.0.0.1", "::1", "localhost"},
	}
	if d := cmp.Diff(gotLeaf, wantLeaf); d != "" {
		t.Errorf("leaf (-got +want):\n%s", d)
	}
	pool, err := CertPool(m.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host, CurrentTime: t0}); err != nil {
			t.Errorf("leaf.Verify(%s) = %v", host, err)
		}
	}
}

type certSummary struct {
	IsCA           bool
	MaxPathLen     int
	MaxPathLenZero bool
	KeyUsage       x509.KeyUsage
	ExtKeyUsage    []x509.ExtKeyUsage
	NotAfter       time.Time
	Curve          string
	Hosts          []string
}

func curveOf(c *x509.Certificate) string {
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
		return k.Curve.Params().Name
	}
	return "not ECDSA"
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := parseChain(data)
	if err != nil {
		t.Fatal(err)
	}
	return chain[0]
}

// A second start reuses what the first created, unless the hosts changed
// or a certificate is close to expiry.
func TestDevCAReuse(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name    string
		hosts   []string
		later   time.Duration
		tamper  func(t *testing.T, dir string)
		newCA   bool
		newLeaf bool
	}{
		{name: "reuse", later: day},
		{name: "reuse with hosts spelled differently", hosts: []string{"LOCALHOST", "0:0::1", "127.0.0.1"}, later: day},
		{name: "reissue on host change", hosts: []string{"localhost", "crm.test"}, later: day, newLeaf: true},
		{name: "reissue 30 days before expiry", later: 340 * day, newLeaf: true},
		{name: "reissue when the key does not match", later: day, newLeaf: true, tamper: func(t *testing.T, dir string) {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeKey(filepath.Join(dir, "key.pem"), k); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "reissue when the leaf is gone", later: day, newLeaf: true, tamper: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "cert.pem"))
		}},
		{name: "new CA 30 days before the CA expires", later: 3640 * day, newCA: true, newLeaf: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			dir := t.TempDir()
			first := New(devCAConfig(dir), log, clock(t0))
			startManager(t, first)
			ca1, leaf1 := readCert(t, first.CAFile()), first.Status().Leaf
			if tc.tamper != nil {
				tc.tamper(t, dir)
			}

			second := New(devCAConfig(dir, tc.hosts...), log, clock(t0.Add(tc.later)))
			startManager(t, second)
			ca2, leaf2 := readCert(t, second.CAFile()), second.Status().Leaf

			if got := !ca1.Equal(ca2); got != tc.newCA {
				t.Errorf("new CA = %t, want %t", got, tc.newCA)
			}
			if got := !leaf1.Equal(leaf2); got != tc.newLeaf {
				t.Errorf("new leaf = %t, want %t", got, tc.newLeaf)
			}
			if !leaf2.Equal(readCert(t, filepath.Join(dir, "cert.pem"))) {
				t.Error("the leaf served is not the one in cert.pem")
			}
			if err := leaf2.CheckSignatureFrom(ca2); err != nil {
				t.Errorf("leaf not signed by the CA: %v", err)
			}
			want := normalizeHosts(second.cfg.DevCA.Hosts)
			if d := cmp.Diff(leafHosts(leaf2), want); d != "" {
				t.Errorf("leaf hosts (-got +want):\n%s", d)
			}
		})
	}
}

// Half a CA is refused rather than replaced: clients may trust the
// certificate whose key went missing.
func TestDevCAHalfCA(t *testing.T) {
	for _, missing := range []string{"ca.pem", "ca-key.pem"} {
		t.Run(missing, func(t *testing.T) {
			dir := t.TempDir()
			startManager(t, New(devCAConfig(dir), nil, clock(t0)))
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			m := New(devCAConfig(dir), nil, clock(t0))
			err := m.Start(t.Context())
			if err == nil || !strings.HasPrefix(err.Error(), "devca.dir: ") || !strings.Contains(err.Error(), missing) {
				t.Errorf("Start() = %v, want a devca.dir error naming %s", err, missing)
			}
		})
	}
}
