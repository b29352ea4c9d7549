package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	_ "embed"

	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/config"
	"github.com/crmgate/crmgate/demo/crm"
	"github.com/crmgate/crmgate/policies"
	"github.com/crmgate/crmgate/proxy/assertion"
	"github.com/crmgate/crmgate/proxy/certs"
	"github.com/crmgate/crmgate/secret"
)

//go:embed demo.yaml.tmpl
var demoConfigTemplate string

// demoInfo is the demo.json contract: scripts and tests rely on these names,
// so fields are added, never renamed.
type demoInfo struct {
	GatewayURL string `json:"gateway_url"`
	AdminURL   string `json:"admin_url"`
	IdPURL     string `json:"idp_url"`
	CRMURL     string `json:"crm_url"`
	CACert     string `json:"ca_cert"`
	Config     string `json:"config"`
	Log        string `json:"log"`
	PID        int    `json:"pid"`
	AdminToken string `json:"admin_token"`
	JWKSURL    string `json:"jwks_url"`
	// Redis is the session store's address, empty when in memory.
	Redis string `json:"redis,omitempty"`
	// AuditLog is the current audit file; AuditPublicKey the key that
	// verifies its checkpoints (crmgate audit verify --key).
	AuditLog       string     `json:"audit_log"`
	AuditPublicKey string     `json:"audit_public_key"`
	Users          []demoUser `json:"users"`
	APIKeys        []demoKey  `json:"api_keys"`
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "crm":
			return cmdDemoCRM(ctx, args[1:], stderr)
		case "idp":
			return cmdDemoIdP(ctx, args[1:], stdout, stderr)
		}
	}
	fs := newFlags("demo", stderr)
	dataDir := fs.String("data-dir", ".crmgate-demo", "folder for the demo's certificates, secrets, configuration, logs and demo.json")
	addr := fs.String("addr", "127.0.0.1:8443", "gateway HTTPS address (loopback)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9090", "admin listener address (loopback)")
	crmAddr := fs.String("crm-addr", "127.0.0.1:8081", "sample CRM address (loopback)")
	idpAddr := fs.String("idp-addr", "127.0.0.1:8444", "development OpenID provider address (loopback)")
	redisAddr := fs.String("redis", "", "host:port of a Redis server to keep sessions in (loopback; empty: in memory)")
	contacts := fs.Int("contacts", 200, "number of sample contacts in the CRM")
	policyDir := fs.String("policy", "shipped", "folder of a Rego policy set the gateway enforces; shipped: the CRM policy built into this binary (written to the data folder); none: no policy stage")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, a := range []struct{ flag, v string }{{"addr", *addr}, {"admin-addr", *adminAddr}, {"crm-addr", *crmAddr}, {"idp-addr", *idpAddr}} {
		if err := loopbackOnly(a.v); err != nil {
			return fmt.Errorf("-%s: %w", a.flag, err)
		}
	}
	if *redisAddr != "" {
		if err := loopbackOnly(*redisAddr); err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	var polDir string
	switch *policyDir {
	case "shipped", "none":
	default:
		if polDir, err = filepath.Abs(*policyDir); err != nil {
			return err
		}
		if fi, err := os.Stat(polDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("-policy: %s is not a folder", *policyDir)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if *policyDir == "shipped" {
		if polDir, err = writeShippedPolicy(filepath.Join(dir, "policies")); err != nil {
			return err
		}
	}
	secrets, err := demoSecrets(filepath.Join(dir, "secrets"))
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "crmgate.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	log, flush := newLogger(config.LogConfig{Level: "info", Format: "json", FlushInterval: 100 * time.Millisecond}, logFile)
	defer flush()

	// Everything listens first: the configuration and the provider's
	// client registration need the real addresses when a flag asks for
	// port 0.
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
	gwLn, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer gwLn.Close()
	admLn, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer admLn.Close()
	idpLn, err := net.Listen("tcp", *idpAddr)
	if err != nil {
		return fmt.Errorf("demo IdP: %w", err)
	}
	defer idpLn.Close()
	gatewayURL := "https://localhost:" + port(gwLn.Addr())
	idpURL := "https://localhost:" + port(idpLn.Addr())

	tlsDir := filepath.Join(dir, "tls")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The development CA issues the gateway's and the provider's
	// certificates; it must exist before the configuration (which names
	// it as the provider's CA) is loaded and before the provider serves.
	if err := ensureDevCA(ctx, tlsDir, log); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "crmgate.yaml")
	if err := writeDemoConfig(cfgPath, demoParams{
		HTTPS: gwLn.Addr().String(), Admin: admLn.Addr().String(), CRM: "http://" + crmLn.Addr().String(), TLSDir: tlsDir,
		GatewayURL: gatewayURL, IdPURL: idpURL, CAFile: filepath.Join(tlsDir, "ca.pem"), Redis: *redisAddr, Secrets: secrets, KeyFile: filepath.Join(dir, "apikeys.json"), PolicyDir: polDir,
		AuditLog: filepath.Join(dir, "audit", "audit.log"), AuditSpool: filepath.Join(dir, "audit", "spool"),
	}); err != nil {
		return err
	}
	f, err := config.Load(cfgPath, secret.Resolver{})
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	keys, err := demoAPIKeys(ctx, f, dir)
	if err != nil {
		return err
	}
	users, plain, err := demoUsers(dir)
	if err != nil {
		return err
	}
	roots, err := certs.CertPool(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		return err
	}
	clientSecret, err := os.ReadFile(secrets.ClientSecret)
	if err != nil {
		return err
	}
	idpSrv, err := startDemoIdP(idpLn, idpParams{
		issuer: idpURL, certFile: filepath.Join(tlsDir, "cert.pem"), keyFile: filepath.Join(tlsDir, "key.pem"),
		roots: roots, users: users, gatewayURL: gatewayURL,
		clientID: "crmgate-demo", clientSecret: string(clientSecret), backChannel: true,
	}, log)
	if err != nil {
		return err
	}
	defer idpSrv.srv.Close()

	gw, err := startGateway(ctx, f, log, listeners{gateway: gwLn, admin: admLn})
	if err != nil {
		return err
	}
	adminToken, err := os.ReadFile(secrets.AdminToken)
	if err != nil {
		cancel()
		_ = gw.wait()
		return err
	}
	info := demoInfo{
		GatewayURL:     gatewayURL,
		IdPURL:         idpSrv.url,
		Users:          plain,
		AdminURL:       "http://" + gw.admin.Addr().String(),
		AdminToken:     string(adminToken),
		CRMURL:         "http://" + crmLn.Addr().String(),
		CACert:         gw.certs.CAFile(),
		Config:         cfgPath,
		Log:            logPath,
		PID:            os.Getpid(),
		JWKSURL:        gatewayURL + "/.crmgate/jwks.json",
		Redis:          *redisAddr,
		APIKeys:        keys,
		AuditLog:       filepath.Join(dir, "audit", "audit.log"),
		AuditPublicKey: secrets.AuditPublicKey,
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

// demoHosts are the names of the demo's certificate, as demo.yaml.tmpl
// also lists them.
var demoHosts = []string{"localhost", "127.0.0.1", "::1"}

// ensureDevCA creates the development CA and the serving certificate when
// they are missing.
func ensureDevCA(ctx context.Context, dir string, log *slog.Logger) error {
	c := certs.Config{Source: certs.SourceDevCA, DevCA: certs.DevCAConfig{Dir: dir, Hosts: demoHosts}}
	c.Defaults()
	cm := certs.New(c, log.With("component", "certs"), time.Now)
	if err := cm.Start(ctx); err != nil {
		return fmt.Errorf("tls.%w", err)
	}
	return cm.Close()
}

// writeShippedPolicy writes the policy built into the binary to dir,
// replacing what an earlier start wrote, and returns dir: the demo always
// runs the policy of its own version. To change it, copy the folder and
// start the demo with -policy.
func writeShippedPolicy(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("policy folder: %w", err)
	}
	entries, err := policies.FS.ReadDir(".")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := policies.FS.ReadFile(e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return "", fmt.Errorf("policy folder: %w", err)
		}
	}
	return dir, nil
}

// secretFiles are the demo's generated secrets, one file each.
type secretFiles struct {
	SessionKey, ClientSecret, AdminToken, AssertionKey, APIKeyPepper, RedactHashKey string
	// AuditSigningKey signs the audit log's checkpoints; AuditPublicKey
	// verifies them.
	AuditSigningKey, AuditPublicKey string
}

// demoSecrets creates the demo's secrets at first start and keeps them
// afterwards, so that sessions (with Redis) and the CRM's trust in the
// assertion key survive a restart.
func demoSecrets(dir string) (secretFiles, error) {
	s := secretFiles{
		SessionKey:      filepath.Join(dir, "session.key"),
		ClientSecret:    filepath.Join(dir, "oidc-client.secret"),
		AdminToken:      filepath.Join(dir, "admin.token"),
		AssertionKey:    filepath.Join(dir, "assertion-key.pem"),
		APIKeyPepper:    filepath.Join(dir, "apikey.pepper"),
		RedactHashKey:   filepath.Join(dir, "redact-hash.key"),
		AuditSigningKey: filepath.Join(dir, "audit-signing.pem"),
		AuditPublicKey:  filepath.Join(dir, "audit-signing.pub"),
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, fmt.Errorf("secrets folder: %w", err)
	}
	gen := map[string]func() ([]byte, error){
		s.SessionKey:   func() ([]byte, error) { t, err := randomToken(48); return []byte(t), err },
		s.ClientSecret: func() ([]byte, error) { t, err := randomToken(48); return []byte(t), err },
		s.AdminToken:   func() ([]byte, error) { t, err := randomToken(32); return []byte(t), err },
		s.AssertionKey: assertion.GenerateKeyPEM,
		s.APIKeyPepper: func() ([]byte, error) { t, err := randomToken(48); return []byte(t), err },
		// Kept across restarts: hashed values join only under one key.
		s.RedactHashKey: func() ([]byte, error) { t, err := randomToken(48); return []byte(t), err },
		// Kept across restarts: the log's checkpoints verify with one key.
		s.AuditSigningKey: generateAuditKey,
	}
	for path, g := range gen {
		if _, err := os.Stat(path); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return s, err
		}
		b, err := g()
		if err != nil {
			return s, err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return s, err
		}
	}
	// The public half, for auditors: written each start from the key.
	priv, err := os.ReadFile(s.AuditSigningKey)
	if err != nil {
		return s, err
	}
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.AuditSigningKey, err)
	}
	pub, err := audit.MarshalPublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return s, err
	}
	if err := os.WriteFile(s.AuditPublicKey, pub, 0o644); err != nil {
		return s, err
	}
	return s, nil
}

// generateAuditKey is a new Ed25519 key, PKCS#8 PEM.
func generateAuditKey() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

type demoParams struct {
	HTTPS, Admin, CRM, TLSDir  string
	GatewayURL, IdPURL, CAFile string
	// Redis is host:port of the session store and rate-limit counters;
	// empty: memory.
	Redis   string
	KeyFile string
	Secrets secretFiles
	// PolicyDir is the policy set the gateway enforces; empty: none.
	PolicyDir string
	// AuditLog is the audit file sink's active file; AuditSpool its
	// spool folder.
	AuditLog, AuditSpool string
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
  Admin      %s   (/healthz, /readyz, /metrics, /sessions, /apikeys; token in demo.json)
  IdP        %s   (development OpenID provider, not for production)
  Sample CRM %s   (reachable directly only for comparison)
  Config     %s
  Log        %s
  Audit log  %s   (one signed, hash-chained OCSF event per request)
  All of it  %s

Users (sign in at the gateway; the second factor is a TOTP code):
`, d.GatewayURL, d.CACert, d.AdminURL, d.IdPURL, d.CRMURL, d.Config, d.Log, d.AuditLog, jsonPath)
	printDemoUsers(w, d.Users)
	fmt.Fprintf(w, "\nAPI keys (send as X-API-Key; tier standard: 10 requests/s, burst 20):\n")
	for _, k := range d.APIKeys {
		fmt.Fprintf(w, "  %-18s %s  %s\n", k.Name, k.Key, strings.Join(k.Scopes, ","))
	}
	fmt.Fprintf(w, `
Try:
  open %s/ in a browser (trust %s first) and sign in
    as alice: /api/contacts lists only her contacts, ssn removed, card masked
    as carol: DELETE a contact or /api/export/contacts asks for her TOTP code (step-up)
  curl --cacert %s %s/api/contacts/1                         # 401: sign in first
  curl --cacert %s %s/api/whoami -H 'X-CRM-User: mallory'   # the spoofed header never reaches the CRM
  curl --cacert %s '%s/api/contacts/..%%2fadmin'               # refused: 400
  curl --cacert %s %s/.crmgate/jwks.json                     # keys that verify the identity assertion
  curl -H "Authorization: Bearer $(jq -r .admin_token %s)" %s/sessions
  curl --cacert %s %s/api/contacts/1 -H "X-API-Key: $(jq -r '.api_keys[0].key' %s)"   # an API client (read-only key)
  tail -f %s | jq -c '{type: .unmapped.type, status: .http_response.code, user: .actor.user.uid}'   # watch the audit log
  %s audit verify --live --key %s %s   # check its hash chain and signatures
`, d.GatewayURL, d.CACert, d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, d.CACert, d.GatewayURL, jsonPath, d.AdminURL, d.CACert, d.GatewayURL, jsonPath,
		d.AuditLog, selfCommand(), d.AuditPublicKey, d.AuditLog)
}

// selfCommand is how the user ran this binary, for commands the demo
// prints: ./bin/crmgate after make demo, crmgate when it is on the PATH.
func selfCommand() string {
	if strings.Contains(os.Args[0], "/") {
		return os.Args[0]
	}
	return "crmgate"
}

// printDemoUsers lists the demo's users with their credentials.
func printDemoUsers(w io.Writer, users []demoUser) {
	for _, u := range users {
		fmt.Fprintf(w, "  %-6s %-8s password %s  TOTP secret %s\n", u.Username, strings.Join(u.Roles, ","), u.Password, u.TOTPSecret)
	}
}
