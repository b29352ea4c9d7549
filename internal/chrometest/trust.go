package chrometest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// dialTimeout bounds the TLS handshake that reads an origin's certificate.
const dialTimeout = 10 * time.Second

// SPKIHash returns the base64 SHA-256 hash of cert's SubjectPublicKeyInfo,
// the form Chromium's --ignore-certificate-errors-spki-list takes (and
// HPKP's pin-sha256 took, RFC 7469 §2.4).
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// leafSPKI connects to the https origin, verifies the certificate it
// presents against the CA in caFile for the origin's host name, and
// returns the SPKI hash of that leaf. The browser then accepts exactly the
// key this origin serves, and only because our CA vouched for it: a
// server with another certificate still meets a certificate error.
func leafSPKI(caFile, origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", err
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an https origin", origin)
	}
	if caFile == "" {
		return "", errors.New("Options.CAFile is empty")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return "", err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return "", fmt.Errorf("no certificates in %s", caFile)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("verifying its certificate against %s: %w", caFile, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	return SPKIHash(certs[0]), nil
}
