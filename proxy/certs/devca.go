package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Files of the development CA in DevCAConfig.Dir.
const (
	devCACertFile   = "ca.pem"
	devCAKeyFile    = "ca-key.pem"
	devLeafCertFile = "cert.pem"
	devLeafKeyFile  = "key.pem"
)

const (
	devCAValidity   = 10 * 365 * 24 * time.Hour
	devLeafValidity = 365 * 24 * time.Hour
	// devBackdate covers clocks of clients that run a little behind.
	devBackdate = time.Hour
)

// devCA serves a leaf issued by a local CA that it creates when missing.
type devCA struct {
	cfg   DevCAConfig
	log   *slog.Logger
	now   func() time.Time
	state *state
	cert  atomic.Pointer[tls.Certificate]
}

func (d *devCA) path(name string) string { return filepath.Join(d.cfg.Dir, name) }

func (d *devCA) start(context.Context) error {
	if err := os.MkdirAll(d.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("devca.dir: %w", err)
	}
	ca, caKey, err := d.loadOrCreateCA()
	if err != nil {
		return err
	}
	leaf, err := d.loadOrIssueLeaf(ca, caKey)
	if err != nil {
		return err
	}
	d.cert.Store(leaf)
	d.state.installed(leaf.Leaf)
	return nil
}

func (d *devCA) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := d.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errNotStarted
}

func (d *devCA) close() error { return nil }

// loadOrCreateCA reuses the CA in Dir, or creates one when neither of its
// files exists. Half a CA is an error rather than a reason to overwrite:
// clients may trust the certificate whose key went missing.
func (d *devCA) loadOrCreateCA() (*x509.Certificate, crypto.Signer, error) {
	certPEM, certErr := os.ReadFile(d.path(devCACertFile))
	keyPEM, keyErr := os.ReadFile(d.path(devCAKeyFile))
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return d.createCA("none found")
	case certErr != nil:
		return nil, nil, fmt.Errorf("devca.dir: %w (remove %s too to create a new CA)", certErr, devCAKeyFile)
	case keyErr != nil:
		return nil, nil, fmt.Errorf("devca.dir: %w (remove %s too to create a new CA)", keyErr, devCACertFile)
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("devca.dir: %s: %w", d.path(devCACertFile), err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("devca.dir: %s: %w", d.path(devCAKeyFile), err)
	}
	if _, err := keyPair(chain, key); err != nil {
		return nil, nil, fmt.Errorf("devca.dir: %s and %s: %w", devCACertFile, devCAKeyFile, err)
	}
	ca := chain[0]
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("devca.dir: %s is not a CA certificate", d.path(devCACertFile))
	}
	if d.now().Add(expiryWarning).After(ca.NotAfter) {
		return d.createCA("the previous CA expires on " + ca.NotAfter.Format(time.DateOnly))
	}
	return ca, key, nil
}

func (d *devCA) createCA(why string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	now := d.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "crmgate development CA " + fmt.Sprintf("%032x", serial)[:8], Organization: []string{"crmgate development"}},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.Add(devCAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// MaxPathLen 0: the CA signs leaves only, never another CA.
		MaxPathLen:     0,
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	// The key goes first: a crash between the writes leaves a key without
	// a certificate, which the next start reports instead of silently
	// pairing a new certificate with nothing.
	if err := writeKey(d.path(devCAKeyFile), key); err != nil {
		return nil, nil, fmt.Errorf("devca.dir: %w", err)
	}
	if err := writeFileAtomic(d.path(devCACertFile), pemCert(der), 0o644); err != nil {
		return nil, nil, fmt.Errorf("devca.dir: %w", err)
	}
	d.log.Warn("created a development CA; clients must trust it, and it must never be used in production",
		"reason", why, "ca_file", d.path(devCACertFile), "not_after", ca.NotAfter)
	return ca, key, nil
}

// loadOrIssueLeaf reuses the leaf in Dir while it is signed by ca, valid
// for more than expiryWarning and for exactly the configured hosts, and
// issues a new one otherwise.
func (d *devCA) loadOrIssueLeaf(ca *x509.Certificate, caKey crypto.Signer) (*tls.Certificate, error) {
	pair, reason := d.reusableLeaf(ca)
	if reason == "" {
		return pair, nil
	}
	leaf, err := d.issueLeaf(ca, caKey)
	if err != nil {
		return nil, err
	}
	d.log.Info("issued a development certificate", "reason", reason, "hosts", d.cfg.Hosts,
		"cert_file", d.path(devLeafCertFile), "not_after", leaf.Leaf.NotAfter)
	return leaf, nil
}

// reusableLeaf returns the leaf on disk, or says why it cannot be reused.
func (d *devCA) reusableLeaf(ca *x509.Certificate) (*tls.Certificate, string) {
	certPEM, err := os.ReadFile(d.path(devLeafCertFile))
	if err != nil {
		return nil, err.Error()
	}
	keyPEM, err := os.ReadFile(d.path(devLeafKeyFile))
	if err != nil {
		return nil, err.Error()
	}
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, devLeafCertFile + ": " + err.Error()
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, devLeafKeyFile + ": " + err.Error()
	}
	pair, err := keyPair(chain, key)
	if err != nil {
		return nil, err.Error()
	}
	leaf := chain[0]
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, "not signed by the current CA"
	}
	if d.now().Add(expiryWarning).After(leaf.NotAfter) {
		return nil, "expires on " + leaf.NotAfter.Format(time.DateOnly)
	}
	if got, want := leafHosts(leaf), normalizeHosts(d.cfg.Hosts); !slices.Equal(got, want) {
		return nil, fmt.Sprintf("hosts changed from %v to %v", got, want)
	}
	return pair, ""
}

func (d *devCA) issueLeaf(ca *x509.Certificate, caKey crypto.Signer) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := d.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: d.cfg.Hosts[0], Organization: []string{"crmgate development"}},
		NotBefore:    now.Add(-devBackdate),
		NotAfter:     now.Add(devLeafValidity),
		// ECDSA keys sign; they never encipher keys (RFC 5480 §3).
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range d.cfg.Hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(h))
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writeKey(d.path(devLeafKeyFile), key); err != nil {
		return nil, fmt.Errorf("devca.dir: %w", err)
	}
	if err := writeFileAtomic(d.path(devLeafCertFile), pemCert(der), 0o644); err != nil {
		return nil, fmt.Errorf("devca.dir: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// leafHosts lists a certificate's SANs the way normalizeHosts does.
func leafHosts(c *x509.Certificate) []string {
	var hosts []string
	for _, n := range c.DNSNames {
		hosts = append(hosts, strings.ToLower(n))
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			hosts = append(hosts, a.Unmap().String())
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// normalizeHosts lowercases names and spells addresses canonically, sorted,
// so that ::1 and 0:0::1 or Localhost and localhost compare equal.
func normalizeHosts(in []string) []string {
	var hosts []string
	for _, h := range in {
		if a, err := netip.ParseAddr(h); err == nil {
			hosts = append(hosts, a.Unmap().String())
		} else {
			hosts = append(hosts, strings.ToLower(h))
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts)
}

// randomSerial returns a 128-bit serial number; CA/Browser Forum Baseline
// Requirements §7.1 ask for at least 64 random bits.
func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
