package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// TLSConfig configures TLS to the receiver. The zero value verifies the
// receiver against the system roots and the name in the address, and sends
// no client certificate. TLS 1.2 is the least version offered.
type TLSConfig struct {
	CAFile     string     `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that sign the receiver's certificate. Empty: the system roots."`
	ServerName string     `yaml:"server_name" jsonschema_description:"Name to verify in the receiver's certificate instead of the address's host."`
	ClientCert string     `yaml:"client_cert" jsonschema_description:"PEM client certificate (chain) for receivers that require mutual TLS."`
	ClientKey  secret.Ref `yaml:"client_key" jsonschema_description:"Secret reference (file:/path or env:NAME) to the PEM private key of client_cert."`
}

// IsZero reports whether no TLS option is set.
func (t TLSConfig) IsZero() bool {
	return t.CAFile == "" && t.ServerName == "" && t.ClientCert == "" && t.ClientKey.IsZero()
}

// validate reports problems with paths relative to the TLS section.
func (t TLSConfig) validate() error {
	if (t.ClientCert == "") != t.ClientKey.IsZero() {
		return fielderr.New("client_key", "client_cert and client_key go together")
	}
	return nil
}

// build reads the files and returns the client TLS configuration. Errors
// name the key, relative to the TLS section.
func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	var errs []error
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			errs = append(errs, fielderr.New("ca_file", "%v", err))
		} else {
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				errs = append(errs, fielderr.New("ca_file", "%s holds no PEM certificate", t.CAFile))
			}
		}
	}
	if t.ClientCert != "" {
		certPEM, err := os.ReadFile(t.ClientCert)
		key := t.ClientKey.Value()
		switch {
		case err != nil:
			errs = append(errs, fielderr.New("client_cert", "%v", err))
		case key == nil:
			errs = append(errs, fielderr.New("client_key", "secret %s is not resolved", t.ClientKey))
		default:
			cert, err := tls.X509KeyPair(certPEM, key)
			if err != nil {
				// The error names no key material, only what is wrong.
				errs = append(errs, fielderr.New("client_cert", "with client_key: %v", err))
			} else {
				tc.Certificates = []tls.Certificate{cert}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return tc, nil
}
