package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// ErrKeyMismatch is returned when a private key is not the key of the
// certificate it is paired with.
var ErrKeyMismatch = errors.New("private key does not match certificate")

// expiryWarning is how long before expiry a certificate is worth a warning;
// it is also when the development CA reissues its leaf.
const expiryWarning = 30 * 24 * time.Hour

// parseChain reads every CERTIFICATE block of a PEM file, leaf first. Other
// block types are skipped, as crypto/tls does, so a file that bundles the
// key too still loads.
func parseChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return chain, nil
}

// parseKey reads the first private key of a PEM file in any of the
// encodings OpenSSL and Go write: PKCS #8, PKCS #1 (RSA) and SEC 1 (EC).
func parseKey(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PRIVATE KEY PEM block found")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			return asSigner(k)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported; store the key unencrypted with restrictive permissions")
		}
	}
}

func asSigner(k any) (crypto.Signer, error) {
	// PKCS #8 also holds X25519 and other keys that cannot sign.
	if s, ok := k.(crypto.Signer); ok {
		return s, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

// keyPair pairs a chain with its key after checking that they belong
// together, so that a wrong key is refused when loaded rather than at the
// first handshake.
func keyPair(chain []*x509.Certificate, key crypto.Signer) (*tls.Certificate, error) {
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, ErrKeyMismatch
	}
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

// warnValidity logs what is wrong with a certificate that still loads: the
// gateway serves it rather than refuse to start, since an operator may be
// in the middle of replacing it.
func warnValidity(log *slog.Logger, chain []*x509.Certificate, now time.Time) {
	leaf := chain[0]
	attrs := []any{"subject", leaf.Subject.String(), "not_before", leaf.NotBefore, "not_after", leaf.NotAfter}
	switch {
	case now.After(leaf.NotAfter):
		log.Warn("certificate has expired; clients will refuse it", attrs...)
	case now.Before(leaf.NotBefore):
		log.Warn("certificate is not valid yet; clients will refuse it", attrs...)
	case leaf.NotAfter.Sub(now) < expiryWarning:
		log.Warn("certificate expires soon", append(attrs, "remaining", leaf.NotAfter.Sub(now).Round(time.Hour).String())...)
	}
	for i := 1; i < len(chain); i++ {
		if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
			log.Warn("certificate chain is out of order or incomplete: each certificate should be followed by its issuer",
				"position", i+1, "subject", chain[i].Subject.String(), "error", err)
			break
		}
	}
}

// CertPool reads a PEM file of CA certificates into a pool, for clients
// that must trust the development CA (see Manager.CAFile) or a private ACME
// server.
func CertPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificates found", caFile)
	}
	return pool, nil
}

// writeFileAtomic replaces path with data so that a reader (or a crash)
// never sees a half-written file: it writes a temporary file in the same
// folder and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
