package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// env is what every run shares: the built binaries, the certificates, the
// running upstream and identity provider, and the tools.
type env struct {
	root   string // repository root
	work   string // temporary folder: bin/, tls/, logs/, www/, configurations
	bin    string
	tlsDir string
	www    string
	procs  *procs
	// tools maps a command name to its path; versions lists what the
	// report names.
	tools    map[string]string
	versions []string
	goVer    string

	caFile    string
	caPool    *x509.CertPool
	ecdsa     certSet
	rsa       certSet
	sslConf   string // OpenSSL configuration that pins wrk to TLS 1.3 and X25519
	postLua   string // wrk script of the POST workload
	sutAddr   string // the one address every configuration under test listens on
	upAddr    string // the upstream's plain-HTTP address
	upstream  *proc
	idpURL    string
	idp       *proc
	cookieKey string // oauth2-proxy's cookie secret
	clientSec string // both relying parties' client secret at the IdP
	secrets   map[string]string
	// bearerKey signs the JWT workload's access tokens; bearerJWKS is
	// the file of its public key set, served by the IdP.
	bearerKey  *ecdsa.PrivateKey
	bearerJWKS string
	// pprofDir receives CPU profiles of crmgate (-pprof), or is "".
	pprofDir string
}

// The benchmark's user at the identity provider: roles support (reads
// contacts with the support view: redactions) and sales (may create
// contacts).
const (
	benchUser     = "alice"
	benchPassword = "bench-password-7d3f0a9c"
	benchRoles    = "support,sales"
)

// browserHeaders are sent on every authenticated request and at sign-in,
// so that the session's fingerprint (user agent, language, and the JA4
// the gateway is told through trustedJA4Header) matches the load's.
var browserHeaders = []string{
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
	"Accept-Language: en-GB,en;q=0.8",
	trustedJA4Header + ": t13d1516h2_8daaf6152771_02713d6af862",
}

const trustedJA4Header = "X-JA4"

// findRoot returns the directory holding the module's go.mod, searching
// upwards from the working directory.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/crmgate/crmgate\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the crmgate repository: run bench/run from the repository")
		}
		dir = parent
	}
}

// build compiles the gateway and the benchmark's programs into e.bin.
func build(ctx context.Context, e *env) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return errors.New("go not found in PATH")
	}
	out, err := e.procs.run(ctx, 5*time.Minute, nil, gobin, "env", "GOVERSION")
	if err != nil {
		return err
	}
	e.goVer = strings.TrimSpace(string(out))
	_, err = e.procs.run(ctx, 10*time.Minute, nil, gobin, "build", "-C", e.root, "-o", e.bin+string(filepath.Separator),
		"./cmd/crmgate", "./bench/cmd/baseline", "./bench/cmd/load", "./bench/cmd/idp", "./bench/cmd/sessionmem", "./bench/cmd/rulescale")
	return err
}

// prepare writes what every configuration shares: certificates, the
// upstream's content, wrk's TLS settings and POST script, secrets.
func prepare(e *env) error {
	var err error
	if e.caFile, e.ecdsa, e.rsa, err = makeCertSets(e.tlsDir); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	caPEM, err := os.ReadFile(e.caFile)
	if err != nil {
		return err
	}
	e.caPool = x509.NewCertPool()
	e.caPool.AppendCertsFromPEM(caPEM)
	if err := writeContent(e.www); err != nil {
		return err
	}
	// wrk links OpenSSL, which reads this file through OPENSSL_CONF: the
	// clients offer TLS 1.3 only, with X25519 only, like the Go clients.
	e.sslConf = filepath.Join(e.work, "openssl-client.cnf")
	ssl := "openssl_conf = default_conf\n[default_conf]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\nMinProtocol = TLSv1.3\nGroups = X25519\n"
	if err := os.WriteFile(e.sslConf, []byte(ssl), 0o644); err != nil {
		return err
	}
	e.postLua = filepath.Join(e.work, "post.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", postBody())
	if err := os.WriteFile(e.postLua, []byte(lua), 0o644); err != nil {
		return err
	}
	if err := bearerKeys(e); err != nil {
		return fmt.Errorf("bearer keys: %w", err)
	}
	e.clientSec = randomHex(48)
	e.secrets = map[string]string{}
	for _, name := range []string{"session-key", "client-secret", "pepper", "redact-key", "audit-key"} {
		v := randomHex(48)
		switch name {
		case "client-secret":
			v = e.clientSec
		case "audit-key":
			v = ed25519PEM()
		}
		path := filepath.Join(e.work, "secret-"+name)
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			return err
		}
		e.secrets[name] = path
	}
	e.cookieKey = randomHex(16) // 32 characters: an AES-256 key for oauth2-proxy
	e.sutAddr, err = freeAddr()
	return err
}

// startIdP starts the development OpenID provider on the load CPU with
// the benchmark user and the two relying parties (crmgate and
// oauth2-proxy), both on the configurations' shared address.
func startIdP(ctx context.Context, e *env) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	base := "https://localhost:" + port(e.sutAddr)
	p, err := e.procs.start("idp", []string{"GOMAXPROCS=1"}, pinned(loadCPU, filepath.Join(e.bin, "idp"),
		"-addr", addr, "-cert", e.ecdsa.cert, "-key", e.ecdsa.key,
		"-user", benchUser+":"+benchPassword+":"+benchRoles,
		"-client", "crmgate:"+e.clientSec+":"+base+"/.crmgate/callback",
		"-client", "oauth2-proxy:"+e.clientSec+":"+base+"/oauth2/callback",
		"-jwks", bearerJWKSPath+"="+e.bearerJWKS)...)
	if err != nil {
		return err
	}
	e.idpURL = "https://localhost:" + port(addr)
	return waitReady(ctx, p, 20*time.Second, func(ctx context.Context) error {
		return getOK(ctx, e.caPool, e.idpURL+"/.well-known/openid-configuration", nil)
	})
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. Another process could take it before the server binds it; the
// server then fails to start and says so.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// waitReady polls check every 50 ms until it succeeds, p exits, or
// timeout passes.
func waitReady(ctx context.Context, p *proc, timeout time.Duration, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("%s %v before it was ready; its log (%s) ends:\n%s", p.name, err, p.logPath, p.logTail())
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v; its log (%s) ends:\n%s", p.name, timeout, last, p.logPath, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clientTLS is the TLS configuration of the harness's own Go clients:
// the same TLS 1.3 and X25519 as wrk and the load generator.
func clientTLS(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"}}
}

// probe sends one request and returns its status. HTTPS URLs are verified
// against pool.
func probe(ctx context.Context, pool *x509.CertPool, method, url string, headers []string) (int, error) {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: clientTLS(pool), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(postBody())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		if name, value, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(name, strings.TrimSpace(value))
		}
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// getOK returns nil if GET url answers 200.
func getOK(ctx context.Context, pool *x509.CertPool, url string, headers []string) error {
	st, err := probe(ctx, pool, http.MethodGet, url, headers)
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, st)
	}
	return nil
}

// ed25519PEM returns a new Ed25519 private key as PKCS#8 PEM: the audit
// trail's checkpoint signing key.
func ed25519PEM() string {
	_, k, _ := ed25519.GenerateKey(nil)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
