package policy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"
)

// bundleLoader reads the configured bundle for the engine: the file, or
// the URL with If-None-Match, so that an unmodified bundle is not
// downloaded again.
type bundleLoader struct {
	cfg BundleConfig
	// location names the bundle in Sources and logs: the file, or the
	// URL's host and path (an error location joins a module's path to
	// it, which a scheme's // would not survive).
	location string
	log      *slog.Logger

	mu sync.Mutex
	// client is built at the first fetch, so that New reads no file.
	client *http.Client
	// last is the Source of the last bundle read and verified; etag is
	// its ETag, for a URL.
	etag string
	last *Source
}

func newBundleLoader(c BundleConfig, log *slog.Logger) *bundleLoader {
	l := &bundleLoader{cfg: c, location: c.File, log: log}
	if c.URL != "" {
		l.location = c.URL
		if u, err := url.Parse(c.URL); err == nil {
			l.location = u.Host + u.EscapedPath()
		}
	}
	return l
}

// read returns the bundle's current content, verified.
func (l *bundleLoader) read(ctx context.Context) (*Source, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.URL != "" {
		return l.fetch(ctx)
	}
	f, err := os.Open(l.cfg.File)
	if err != nil {
		return nil, l.fetchErr(err)
	}
	defer f.Close()
	src, err := ReadBundle(f, l.location, l.cfg)
	if err != nil {
		return nil, err
	}
	l.loaded(ctx, src, "")
	l.last = src
	return src, nil
}

// fetch GETs the URL. 304 Not Modified returns the last Source read, the
// same pointer, so that the engine reports the set unchanged; any other
// status than 200, a TLS or network failure, a timeout and a bundle
// larger than max_bytes are errors, and the engine keeps its set.
func (l *bundleLoader) fetch(ctx context.Context) (*Source, error) {
	if l.client == nil {
		c, err := bundleClient(l.cfg)
		if err != nil {
			return nil, l.fetchErr(err)
		}
		l.client = c
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cfg.URL, nil)
	if err != nil {
		return nil, l.fetchErr(err)
	}
	// Without this, the transport would ask for gzip and undo a
	// Content-Encoding: gzip that some servers put on .tar.gz files.
	req.Header.Set("Accept-Encoding", "identity")
	if l.last != nil && l.etag != "" {
		req.Header.Set("If-None-Match", l.etag)
	}
	if t := l.cfg.BearerToken.Value(); t != nil {
		req.Header.Set("Authorization", "Bearer "+string(t))
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, l.fetchErr(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && l.last != nil:
		return l.last, nil
	case resp.StatusCode != http.StatusOK:
		return nil, l.fetchErr(fmt.Errorf("GET answered %s", resp.Status))
	case resp.ContentLength > l.cfg.MaxBytes:
		return nil, bundleErr(l.location, fmt.Errorf("%d bytes, larger than max_bytes (%d)", resp.ContentLength, l.cfg.MaxBytes))
	}
	src, err := ReadBundle(resp.Body, l.location, l.cfg)
	if err != nil {
		return nil, err
	}
	etag := resp.Header.Get("ETag")
	l.loaded(ctx, src, etag)
	l.etag, l.last = etag, src
	return src, nil
}

// fetchErr is a failure to get the bundle's bytes at all.
func (l *bundleLoader) fetchErr(err error) error {
	return fmt.Errorf("policy bundle %s: %w", l.location, err)
}

// loaded logs a bundle read: at info when its content differs from the
// last one read, with the manifest's revision next to the content's; a
// warning, every time, when its signature was not verified.
func (l *bundleLoader) loaded(ctx context.Context, src *Source, etag string) {
	attrs := []slog.Attr{
		slog.String("bundle", l.location),
		slog.String("revision", src.Revision()),
		slog.String("bundle_revision", src.BundleRevision()),
	}
	if etag != "" {
		attrs = append(attrs, slog.String("etag", etag))
	}
	if l.cfg.InsecureSkipVerify {
		l.log.LogAttrs(ctx, slog.LevelWarn, "policy bundle read WITHOUT signature verification (insecure_skip_verify)", attrs...)
		return
	}
	level := slog.LevelInfo
	if l.last != nil && l.last.Revision() == src.Revision() {
		level = slog.LevelDebug
	}
	l.log.LogAttrs(ctx, level, "policy bundle read, signature verified",
		append(attrs, slog.String("key_id", l.cfg.KeyID))...)
}

// bundleClient is the client of a bundle URL: TLS 1.2 or later, verified
// against ca_file's CAs when set (else the system roots), never through
// an environment proxy, redirects only to URLs the configuration would
// accept (at most 3), each fetch bounded by timeout.
func bundleClient(c BundleConfig) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, err := caPool("CA file", c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: c.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   c.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("redirect refused: more than 3")
			}
			if err := checkBundleURL(req.URL.String()); err != nil {
				return fmt.Errorf("redirect refused: %w", err)
			}
			// No downgrade: an https server may not send the gateway to
			// plain http (which checkBundleURL allows for loopback
			// addresses, where it would reach local services).
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect refused: from https to %s", req.URL.Scheme)
			}
			return nil
		},
	}, nil
}

// caPool reads the PEM certificates of the CA file at path; label names
// the setting in errors.
func caPool(label, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificates found", label, path)
	}
	return pool, nil
}
