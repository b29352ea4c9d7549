package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// acmeTLS1 is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737 §6).
const acmeTLS1 = "acme-tls/1"

// acmeSource obtains and renews certificates from an ACME CA with
// certmagic. It builds its own certmagic cache, config and storage instead
// of using certmagic's package-level defaults, so that nothing it does is
// shared with other users of certmagic in the process.
type acmeSource struct {
	cfg   ACMEConfig
	log   *slog.Logger
	state *state

	magic  atomic.Pointer[certmagic.Config]
	issuer atomic.Pointer[certmagic.ACMEIssuer]
	cache  *certmagic.Cache
}

func (a *acmeSource) http01() bool    { return slices.Contains(a.cfg.Challenges, ChallengeHTTP01) }
func (a *acmeSource) tlsALPN01() bool { return slices.Contains(a.cfg.Challenges, ChallengeTLSALPN01) }

// start loads the certificates in storage and begins obtaining the missing
// ones in the background. It returns before any certificate is issued, on
// purpose: a CA that is down or rate-limiting must not keep the gateway
// from starting (certmagic's ManageAsync retries with exponential backoff
// for about 30 days, logging each failure, and renews before expiry).
// Until a certificate exists, handshakes for its name fail.
func (a *acmeSource) start(ctx context.Context) error {
	var roots *x509.CertPool
	if a.cfg.TrustedRootsFile != "" {
		var err error
		if roots, err = CertPool(a.cfg.TrustedRootsFile); err != nil {
			return fmt.Errorf("acme.trusted_roots_file: %w", err)
		}
	}
	if err := os.MkdirAll(a.cfg.Storage, 0o700); err != nil {
		return fmt.Errorf("acme.storage: %w", err)
	}
	zl := zap.New(slogCore{h: a.log.Handler()})

	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic.Load(), nil },
		Logger:           zl,
	})
	magic := certmagic.New(a.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: a.cfg.Storage},
		Logger:  zl,
		OnEvent: a.onEvent,
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      a.cfg.DirectoryURL,
		TrustedRoots:            roots,
		Email:                   a.cfg.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !a.http01(),
		DisableTLSALPNChallenge: !a.tlsALPN01(),
		AltHTTPPort:             a.cfg.AltHTTPPort,
		AltTLSALPNPort:          a.cfg.AltTLSALPNPort,
		Logger:                  zl,
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	a.magic.Store(magic)
	a.issuer.Store(issuer)

	if err := magic.ManageAsync(ctx, a.cfg.Domains); err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	a.log.Info("managing certificates with ACME; issuance continues in the background",
		"domains", a.cfg.Domains, "directory_url", a.cfg.DirectoryURL, "challenges", a.cfg.Challenges)
	return nil
}

// onEvent turns certmagic's events into Status changes. certmagic calls it
// synchronously, so it only records.
func (a *acmeSource) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cached_managed_cert":
		// A certificate is in the cache, so handshakes can use it: after
		// loading from storage at start and after obtaining a new one.
		a.state.installed(nil)
	case "cert_obtained":
		// A renewal replaces the cached certificate right after this event
		// without another; a first issuance is followed by
		// cached_managed_cert.
		if renewal, _ := data["renewal"].(bool); renewal {
			a.state.installed(nil)
		}
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		a.state.failed(fmt.Errorf("acme: %v: %w", data["identifier"], err))
	}
	return nil
}

func (a *acmeSource) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	magic := a.magic.Load()
	if magic == nil {
		return nil, errNotStarted
	}
	// certmagic answers TLS-ALPN-01 challenges here too, when the
	// ClientHello offers acme-tls/1.
	return magic.GetCertificate(hello)
}

// handleHTTPChallenge answers an ACME HTTP-01 request (RFC 8555 §8.3) and
// reports whether it did.
func (a *acmeSource) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	iss := a.issuer.Load()
	return iss != nil && iss.HandleHTTPChallenge(w, r)
}

func (a *acmeSource) close() error {
	if a.cache != nil {
		a.cache.Stop()
		a.cache = nil
	}
	return nil
}
