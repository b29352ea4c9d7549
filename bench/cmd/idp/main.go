// Command idp serves the development OpenID provider of demo/idp on its
// own, over TLS on a loopback address, for the side-by-side benchmark: the
// gateways under test (crmgate, oauth2-proxy) sign their benchmark user in
// against it once per start, and then only their session cookie is used.
//
// It owns nothing but the wiring: users and clients come from flags, the
// provider is demo/idp's. It runs on the load CPU, outside what is
// measured.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/crmgate/crmgate/bench/internal/loopback"
	"github.com/crmgate/crmgate/demo/idp"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "idp:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8445", "TLS address (loopback)")
	certFile := flag.String("cert", "", "PEM certificate chain")
	keyFile := flag.String("key", "", "PEM private key")
	var users, clients multiFlag
	flag.Var(&users, "user", "NAME:PASSWORD:ROLE[,ROLE...] (repeatable)")
	flag.Var(&clients, "client", "ID:SECRET:REDIRECT_URI[|REDIRECT_URI...] (repeatable)")
	jwks := flag.String("jwks", "", "PATH=FILE: also serve the JSON Web Key Set in FILE at PATH (the benchmark's machine client)")
	flag.Parse()
	if err := loopback.Check(*addr); err != nil {
		return err
	}
	if *certFile == "" || *keyFile == "" || len(users) == 0 || len(clients) == 0 {
		return errors.New("-cert, -key, -user and -client are required")
	}
	cfg := idp.Config{Issuer: "https://localhost:" + portOf(*addr)}
	for _, u := range users {
		name, rest, ok1 := strings.Cut(u, ":")
		pw, roles, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return fmt.Errorf("-user %q: want NAME:PASSWORD:ROLES", u)
		}
		user, _, err := idp.NewUser(name, pw, strings.Split(roles, ","))
		if err != nil {
			return err
		}
		cfg.Users = append(cfg.Users, user)
	}
	for _, c := range clients {
		parts := strings.SplitN(c, ":", 3)
		if len(parts) != 3 {
			return fmt.Errorf("-client %q: want ID:SECRET:REDIRECT_URIS", c)
		}
		cfg.Clients = append(cfg.Clients, idp.Client{ID: parts[0], Secret: parts[1], RedirectURIs: strings.Split(parts[2], "|")})
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := idp.New(cfg, log, time.Now)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	handler := p.Handler()
	if *jwks != "" {
		path, file, ok := strings.Cut(*jwks, "=")
		if !ok || !strings.HasPrefix(path, "/") {
			return fmt.Errorf("-jwks %q: want /PATH=FILE", *jwks)
		}
		set, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Header().Set("Cache-Control", "max-age=3600")
			_, _ = w.Write(set)
		})
		handler = mux
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
		return srv.Close()
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
