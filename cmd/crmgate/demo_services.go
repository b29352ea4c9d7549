package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/demo/crm"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/secret"
)

// The demo's sample CRM and development OpenID provider also run on their
// own, one per process, so that a container stack (deploy/compose) can
// put them next to real gateway replicas. They are development stand-ins:
// the CRM believes the identity headers of whoever reaches it, and the
// provider keeps its users in a file with the plain credentials beside it.

// cmdDemoCRM serves the sample CRM over plain HTTP until ctx ends. The
// CRM trusts the gateway's identity headers: it belongs on a network that
// only the gateways reach.
func cmdDemoCRM(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("demo crm", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "HTTP address to serve on")
	contacts := fs.Int("contacts", 200, "number of sample contacts")
	seed := fs.Int64("seed", 1, "seed of the generated records: replicas with the same seed serve the same data")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *contacts < 1 {
		return fmt.Errorf("-contacts: must be at least 1, got %d", *contacts)
	}
	log, flush, err := serviceLogger(*level, stderr)
	if err != nil {
		return err
	}
	defer flush()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sample CRM: %w", err)
	}
	srv := &http.Server{
		Handler:           crm.New(crm.Config{Contacts: *contacts, Seed: *seed}, log.With("component", "crm"), time.Now).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("sample CRM serving", "addr", ln.Addr().String(), "contacts", *contacts)
	return serveUntil(ctx, srv, func() error { return srv.Serve(ln) })
}

// cmdDemoIdP serves the development OpenID provider over HTTPS until ctx
// ends, with the gateway as its only client. Its users (the demo's alice,
// bob, carol and dave) are created in the data folder at the first start
// and printed, with their passwords and TOTP secrets, on every start.
func cmdDemoIdP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo idp", stderr)
	addr := fs.String("addr", "127.0.0.1:8444", "HTTPS address to serve on")
	issuer := fs.String("issuer", "", "the provider's public https URL, as browsers and the gateway reach it (required)")
	gatewayURL := fs.String("gateway-url", "", "the gateway's external https URL (oidc.external_url), whose callback is registered (required)")
	certFile := fs.String("cert", "", "PEM certificate chain for -issuer's host name (required)")
	keyFile := fs.String("key", "", "PEM private key of -cert (required)")
	dataDir := fs.String("data-dir", ".crmgate-idp", "folder for the users (created at the first start)")
	clientID := fs.String("client-id", "crmgate", "the gateway's client ID (oidc.client_id)")
	clientSecret := fs.String("client-secret", "", "reference to the gateway's client secret (oidc.client_secret), file:/path or env:NAME (required)")
	caFile := fs.String("back-channel-ca", "", "PEM CA certificates to verify the gateway with; when set, the gateway's back-channel logout endpoint is registered")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var problems []string
	for _, f := range []struct{ name, v string }{{"issuer", *issuer}, {"gateway-url", *gatewayURL}} {
		if err := httpsURL(f.v); err != nil {
			problems = append(problems, fmt.Sprintf("-%s: %v", f.name, err))
		}
	}
	for _, f := range []struct{ name, v string }{{"cert", *certFile}, {"key", *keyFile}, {"client-secret", *clientSecret}, {"client-id", *clientID}} {
		if f.v == "" {
			problems = append(problems, fmt.Sprintf("-%s is required", f.name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo idp: %s", strings.Join(problems, "; "))
	}
	ref, err := secret.ParseRef(*clientSecret)
	if err != nil {
		return fmt.Errorf("-client-secret: %w", err)
	}
	if err := ref.Resolve(secret.Resolver{}); err != nil {
		return fmt.Errorf("-client-secret: %w", err)
	}
	p := idpParams{
		issuer: strings.TrimSuffix(*issuer, "/"), certFile: *certFile, keyFile: *keyFile,
		gatewayURL: strings.TrimSuffix(*gatewayURL, "/"), clientID: *clientID, clientSecret: string(ref.Value()),
	}
	if *caFile != "" {
		if p.roots, err = certs.CertPool(*caFile); err != nil {
			return fmt.Errorf("-back-channel-ca: %w", err)
		}
		p.backChannel = true
	}
	log, flush, err := serviceLogger(*level, stderr)
	if err != nil {
		return err
	}
	defer flush()
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	users, plain, err := demoUsers(dir)
	if err != nil {
		return err
	}
	p.users = users
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("demo IdP: %w", err)
	}
	d, err := startDemoIdP(ln, p, log)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(stdout, "Development OpenID provider (not for production) at %s, serving on %s\n", d.url, ln.Addr())
	fmt.Fprintf(stdout, "Client %s, redirect URI %s/.crmgate/callback\n\nUsers (the second factor is a TOTP code):\n", p.clientID, p.gatewayURL)
	printDemoUsers(stdout, plain)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.srv.Shutdown(sctx)
}

// httpsURL reports why s is not an absolute https URL without query or
// fragment.
func httpsURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return err
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an https URL", s)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("%q: no user, query or fragment allowed", s)
	}
	return nil
}

// serviceLogger is the JSON logger of a stand-alone demo service.
func serviceLogger(level string, w io.Writer) (*slog.Logger, func(), error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("-log-level: %w", err)
	}
	log, flush := newLogger(config.LogConfig{Level: level, Format: "json"}, w)
	return log, flush, nil
}

// serveUntil runs serve until ctx ends, then shuts srv down gracefully.
func serveUntil(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
