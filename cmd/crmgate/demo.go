package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	_ "embed"

	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/demo/crm"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/secret"
)

//go:embed demo.yaml.tmpl
var demoConfigTemplate string

// demoInfo is the demo.json contract: scripts and tests rely on these names,
// so fields are added, never renamed.
type demoInfo struct {
	GatewayURL string     `json:"gateway_url"`
	AdminURL   string     `json:"admin_url"`
	IdPURL     string     `json:"idp_url"`
	CRMURL     string     `json:"crm_url"`
	CACert     string     `json:"ca_cert"`
	Config     string     `json:"config"`
	Log        string     `json:"log"`
	PID        int        `json:"pid"`
	Users      []demoUser `json:"users"`
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dataDir := fs.String("data-dir", ".crmgate-demo", "folder for the demo's certificates, configuration, logs and demo.json")
	addr := fs.String("addr", "127.0.0.1:8443", "gateway HTTPS address (loopback)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9090", "admin listener address (loopback)")
	crmAddr := fs.String("crm-addr", "127.0.0.1:8081", "sample CRM address (loopback)")
	idpAddr := fs.String("idp-addr", "127.0.0.1:8444", "development OpenID provider address (loopback)")
	contacts := fs.Int("contacts", 200, "number of sample contacts in the CRM")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, a := range []struct{ flag, v string }{{"addr", *addr}, {"admin-addr", *adminAddr}, {"crm-addr", *crmAddr}, {"idp-addr", *idpAddr}} {
		if err := loopbackOnly(a.v); err != nil {
			return fmt.Errorf("-%s: %w", a.flag, err)
		}
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	logPath := filepath.Join(dir, "crmgate.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log, flush := newLogger(config.LogConfig{Level: "info", Format: "json", FlushInterval: 100 * time.Millisecond}, logFile)
	defer flush()

	// The sample CRM listens first: the gateway's configuration needs its
	// real address when -crm-addr asks for port 0.
	crmLn, err := net.Listen("tcp", *crmAddr)
	if err != nil {
		return fmt.Errorf("sample CRM: %w", err)
	}
	crmSrv := &http.Server{
		Handler:           crm.New(crm.Config{Contacts: *contacts, Seed: 1}, log.With("component", "crm"), time.Now).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = crmSrv.Serve(crmLn) }()
	defer crmSrv.Close()

	cfgPath := filepath.Join(dir, "crmgate.yaml")
	if err := writeDemoConfig(cfgPath, demoParams{
		HTTPS: *addr, Admin: *adminAddr, CRM: "http://" + crmLn.Addr().String(), TLSDir: filepath.Join(dir, "tls"),
	}); err != nil {
		return err
	}
	f, err := config.Load(cfgPath, secret.Resolver{})
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gw, err := startGateway(ctx, f, log)
	if err != nil {
		return err
	}

	gatewayURL := "https://localhost:" + port(gw.server.Addr())
	users, plain, err := demoUsers(dir)
	if err != nil {
		cancel()
		_ = gw.wait()
		return err
	}
	roots, err := certs.CertPool(gw.certs.CAFile())
	if err != nil {
		cancel()
		_ = gw.wait()
		return err
	}
	tlsDir := filepath.Dir(gw.certs.CAFile())
	idpSrv, err := startDemoIdP(*idpAddr, filepath.Join(tlsDir, "cert.pem"), filepath.Join(tlsDir, "key.pem"), roots, users, gatewayURL, log)
	if err != nil {
		cancel()
		_ = gw.wait()
		return err
	}
	defer idpSrv.srv.Close()

	info := demoInfo{
		GatewayURL: gatewayURL,
		IdPURL:     idpSrv.url,
		Users:      plain,
		AdminURL:   "http://" + gw.admin.Addr().String(),
		CRMURL:     "http://" + crmLn.Addr().String(),
		CACert:     gw.certs.CAFile(),
		Config:     cfgPath,
		Log:        logPath,
		PID:        os.Getpid(),
	}
	if err := writeJSONAtomic(filepath.Join(dir, "demo.json"), info); err != nil {
		cancel()
		_ = gw.wait()
		return err
	}
	printDemo(stdout, info, filepath.Join(dir, "demo.json"))
	err = gw.wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

type demoParams struct {
	HTTPS, Admin, CRM, TLSDir string
}

func writeDemoConfig(path string, p demoParams) error {
	t, err := template.New("demo").Parse(demoConfigTemplate)
	if err != nil {
		return err
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: the demo listens on loopback addresses only", addr)
	}
	return nil
}

func port(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return strconv.Itoa(ta.Port)
	}
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// writeJSONAtomic writes v so readers never see a half-written file.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printDemo(w io.Writer, d demoInfo, jsonPath string) {
	fmt.Fprintf(w, `crmgate demo is running (Ctrl-C to stop).

  Gateway    %s   (TLS with a development CA)
  CA cert    %s
  Admin      %s   (/healthz, /readyz, /metrics)
  IdP        %s   (development OpenID provider; users and passwords in demo.json)
  Sample CRM %s   (reachable directly only for comparison)
  Config     %s
  Log        %s
  All of it  %s

Try:
  curl --cacert %s %s/api/contacts/1
  curl --cacert %s %s/api/whoami -H 'X-CRM-User: mallory'   # the spoofed header never reaches the CRM
  curl --cacert %s '%s/api/contacts/..%%2fadmin'               # refused: 400
  curl --cacert %s %s/nothing-here                             # no route: 404
  curl %s/metrics
`, d.GatewayURL, d.CACert, d.AdminURL, d.IdPURL, d.CRMURL, d.Config, d.Log, jsonPath,
		d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, d.AdminURL)
}
