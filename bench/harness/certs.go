package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certSet is one serving certificate, in the forms the servers read.
type certSet struct {
	cert, key string // PEM leaf certificate (then the CA) and PEM key
	combined  string // cert and key in one file (haproxy)
}

// makeCertSets creates a throw-away CA and two leaf certificates for
// localhost and 127.0.0.1 signed by it: ECDSA P-256, which every
// configuration serves, and RSA 2048, for the handshake comparison. The
// CA's certificate is written to dir/ca.pem for the clients to verify.
func makeCertSets(dir string) (ca string, ecdsaSet, rsaSet certSet, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", certSet{}, certSet{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "crmgate benchmark CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return "", certSet{}, certSet{}, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	ca = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
		return "", certSet{}, certSet{}, err
	}
	leaf := func(name string, serial int64, key crypto.Signer) (certSet, error) {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "localhost"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(7 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return certSet{}, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return certSet{}, err
		}
		certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), caPEM...)
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
		s := certSet{
			cert:     filepath.Join(dir, name+"-cert.pem"),
			key:      filepath.Join(dir, name+"-key.pem"),
			combined: filepath.Join(dir, name+"-combined.pem"),
		}
		for path, b := range map[string][]byte{s.cert: certPEM, s.key: keyPEM, s.combined: append(append([]byte{}, certPEM...), keyPEM...)} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return certSet{}, err
			}
		}
		return s, nil
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", certSet{}, certSet{}, err
	}
	if ecdsaSet, err = leaf("ecdsa", 2, ek); err != nil {
		return "", certSet{}, certSet{}, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", certSet{}, certSet{}, err
	}
	if rsaSet, err = leaf("rsa", 3, rk); err != nil {
		return "", certSet{}, certSet{}, err
	}
	return ca, ecdsaSet, rsaSet, nil
}
