// Command upstream serves the sample CRM (package demo/crm) for the
// end-to-end benchmark: over plain HTTP on -addr, where the proxies under
// test reach it, and optionally over TLS (HTTP/1.1 and h2) on -tls-addr,
// where the load generators reach it directly as the "direct"
// configuration.
//
// It serves loopback addresses only. GOMAXPROCS comes from the environment,
// as for any Go program; the harness sets it to 1 and pins the process to
// one CPU. The CRM's own request log (debug level) is not written: only
// warnings and errors reach stderr.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
	"github.com/crmgate/crmgate/demo/crm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8081", "plain-HTTP address (loopback); empty: none")
	tlsAddr := flag.String("tls-addr", "", "TLS address (loopback) serving HTTP/1.1 and h2; empty: none")
	certFile := flag.String("cert", "", "PEM certificate chain for -tls-addr")
	keyFile := flag.String("key", "", "PEM private key for -tls-addr")
	contacts := flag.Int("contacts", 200, "number of sample contacts")
	flag.Parse()

	if *addr == "" && *tlsAddr == "" {
		return errors.New("nothing to serve: set -addr, -tls-addr or both")
	}
	for _, a := range []string{*addr, *tlsAddr} {
		if a == "" {
			continue
		}
		if err := loopback.Check(a); err != nil {
			return err
		}
	}
	var tlsConf *tls.Config
	if *tlsAddr != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("-cert/-key: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := crm.New(crm.Config{Contacts: *contacts, Seed: 1}, log, time.Now).Handler()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var servers []*http.Server
	errc := make(chan error, 2)
	serve := func(a string, tc *tls.Config) error {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		srv := newServer(h, tc, log)
		servers = append(servers, srv)
		go func() {
			if tc != nil {
				errc <- srv.ServeTLS(ln, "", "")
			} else {
				errc <- srv.Serve(ln)
			}
		}()
		return nil
	}
	if *addr != "" {
		if err := serve(*addr, nil); err != nil {
			return err
		}
	}
	if *tlsAddr != "" {
		if err := serve(*tlsAddr, tlsConf); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "upstream: serving (plain %q, tls %q, GOMAXPROCS %d)\n", *addr, *tlsAddr, runtime.GOMAXPROCS(0))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		_ = s.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// newServer returns a keep-alive server for h. With a TLS configuration it
// speaks HTTP/1.1 and h2, negotiated by ALPN.
func newServer(h http.Handler, tc *tls.Config, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if tc != nil {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		srv.Protocols = &p
	}
	return srv
}
