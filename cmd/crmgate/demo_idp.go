package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/crmgate/crmgate/demo/idp"
)

// demoUser is a demo account as demo.json publishes it: the password and
// TOTP secret in plain, for people and scripts to sign in with.
type demoUser struct {
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	TOTPSecret string   `json:"totp_secret"`
	Roles      []string `json:"roles"`
}

// demoAccounts are the demo's users and their roles (PRODUCT.md).
var demoAccounts = []struct {
	name string
	role string
}{{"alice", "sales"}, {"bob", "finance"}, {"carol", "admin"}, {"dave", "support"}}

// demoUsers loads the demo's users from the data folder, or creates them
// with random passwords and TOTP secrets at first start, so that a restart
// keeps the credentials a person already enrolled in an authenticator.
func demoUsers(dir string) ([]idp.User, []demoUser, error) {
	usersPath := filepath.Join(dir, "idp-users.json")
	plainPath := filepath.Join(dir, "demo-users.json")
	users, err := idp.LoadUsers(usersPath)
	if err == nil {
		var plain []demoUser
		b, perr := os.ReadFile(plainPath)
		if perr == nil && json.Unmarshal(b, &plain) == nil && len(plain) == len(users) {
			return users, plain, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("demo users: %w", err)
	}
	users, plain := nil, []demoUser(nil)
	for _, a := range demoAccounts {
		pw, err := randomToken(12)
		if err != nil {
			return nil, nil, err
		}
		u, secret, err := idp.NewUser(a.name, pw, []string{a.role})
		if err != nil {
			return nil, nil, err
		}
		users = append(users, u)
		plain = append(plain, demoUser{Username: a.name, Password: pw, TOTPSecret: secret, Roles: []string{a.role}})
	}
	if err := idp.SaveUsers(usersPath, users); err != nil {
		return nil, nil, err
	}
	if err := writeJSONAtomic(plainPath, plain); err != nil {
		return nil, nil, err
	}
	return users, plain, nil
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// demoIdP is the running development OpenID provider.
type demoIdP struct {
	url string
	srv *http.Server
}

// idpParams describe a development OpenID provider and the one client it
// knows, the gateway.
type idpParams struct {
	issuer       string // the provider's public URL
	certFile     string
	keyFile      string
	roots        *x509.CertPool // CAs the back-channel logout trusts; nil: the system's
	users        []idp.User
	gatewayURL   string // the gateway's external URL, whose callbacks are registered
	clientID     string
	clientSecret string
	backChannel  bool // register the gateway's back-channel logout endpoint
}

// startDemoIdP serves the development OpenID provider over TLS on ln and
// registers the gateway as its client.
func startDemoIdP(ln net.Listener, p idpParams, log *slog.Logger) (*demoIdP, error) {
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("demo IdP certificate: %w", err)
	}
	client := idp.Client{
		ID: p.clientID, Secret: p.clientSecret,
		RedirectURIs:           []string{p.gatewayURL + "/.crmgate/callback"},
		PostLogoutRedirectURIs: []string{p.gatewayURL + "/"},
	}
	if p.backChannel {
		client.BackChannelLogoutURI = p.gatewayURL + "/.crmgate/backchannel-logout"
	}
	prov, err := idp.New(idp.Config{
		Issuer:               p.issuer,
		Users:                p.users,
		Clients:              []idp.Client{client},
		BackChannelTransport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.roots, MinVersion: tls.VersionTLS12}},
	}, log.With("component", "idp"), time.Now)
	if err != nil {
		return nil, err
	}
	d := &demoIdP{url: p.issuer}
	d.srv = &http.Server{
		Handler:           prov.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = d.srv.ServeTLS(ln, "", "") }()
	return d, nil
}
