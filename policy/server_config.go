package policy

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Defaults and bounds of ServerConfig.
const (
	// DefaultServerTimeout bounds one decision asked of an OPA server:
	// connecting (when no kept-alive connection is free), sending the
	// input, the server's evaluation and reading its answer.
	DefaultServerTimeout = 100 * time.Millisecond
	// DefaultServerMaxIdleConns is the keep-alive pool kept to the server,
	// as for an upstream: enough for the decisions a busy gateway has in
	// flight, so that none pays a new connection.
	DefaultServerMaxIdleConns = 128
	// MaxServerResponseBytes bounds the answer read from the server: a
	// decision is a few hundred bytes, and a server that sends more is
	// refused rather than buffered.
	MaxServerResponseBytes = 1 << 20
	maxServerTimeout       = 10 * time.Second
	maxServerConns         = 1 << 16
)

// ServerConfig asks an OPA server (`opa run --server`, typically a
// sidecar on loopback or a Unix socket) for every decision through its
// Data API, instead of evaluating a policy set inside the gateway. The
// input and the decoding of the answer are the embedded engine's; see
// docs/policy.md#decisions-from-an-opa-server.
type ServerConfig struct {
	URL          string        `yaml:"url" jsonschema_description:"Where the OPA server listens: http://127.0.0.1:8181 (http only for a loopback address: 127.0.0.1, ::1, localhost), https://opa.example.com:8443, or unix:///run/opa/opa.sock. A path after the host is a prefix put before /v1/data (a proxy in front of OPA). No user info, query or fragment."`
	Timeout      time.Duration `yaml:"timeout" jsonschema_description:"Longest wait for one decision: connecting when no kept-alive connection is free, sending the input, OPA's evaluation and reading the answer. A slower answer is a deny (policy_timeout). Default 100ms, at most 10s."`
	BearerToken  secret.Ref    `yaml:"bearer_token" secret:"token" jsonschema_description:"Secret reference (env:NAME or file:/path) to the token sent as Authorization: Bearer, for an OPA server run with --authentication=token. Empty: none."`
	CAFile       string        `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that the server's TLS certificate must chain to. Empty: the system roots. https only."`
	ClientCert   string        `yaml:"client_cert" jsonschema_description:"PEM client certificate presented to the server (OPA's --authentication=tls). https only; with client_key."`
	ClientKey    string        `yaml:"client_key" jsonschema_description:"PEM private key of client_cert."`
	MaxIdleConns int           `yaml:"max_idle_conns" jsonschema_description:"Keep-alive connections kept open to the server between decisions. Default 128; at most 65536."`
	MaxConns     int           `yaml:"max_conns" jsonschema_description:"Most connections open to the server at once; a decision that finds none free waits for one within timeout. Default 0: no limit."`
}

// Defaults fills unset fields with their defaults.
func (c *ServerConfig) Defaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultServerTimeout
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = DefaultServerMaxIdleConns
	}
}

// Validate reports every problem at once. It expects Defaults to have run
// and the token's reference to be resolved; it reads no file.
func (c ServerConfig) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	u, err := parseServerURL(c.URL)
	if err != nil {
		add("url", "%v", err)
	}
	if c.Timeout <= 0 || c.Timeout > maxServerTimeout {
		add("timeout", "must be positive and at most %s, got %s", maxServerTimeout, c.Timeout)
	}
	if u != nil && u.Scheme != "https" {
		for _, f := range []struct{ key, val string }{{"ca_file", c.CAFile}, {"client_cert", c.ClientCert}, {"client_key", c.ClientKey}} {
			if f.val != "" {
				add(f.key, "only applies to an https url")
			}
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		add("client_key", "client_cert and client_key go together")
	}
	for _, f := range []struct{ key, val string }{{"ca_file", c.CAFile}, {"client_cert", c.ClientCert}, {"client_key", c.ClientKey}} {
		if strings.ContainsRune(f.val, 0) {
			add(f.key, "%q is not a file path", f.val)
		}
	}
	if c.MaxIdleConns < 1 || c.MaxIdleConns > maxServerConns {
		add("max_idle_conns", "must be between 1 and %d, got %d", maxServerConns, c.MaxIdleConns)
	}
	if c.MaxConns < 0 || c.MaxConns > maxServerConns {
		add("max_conns", "must be between 0 (no limit) and %d, got %d", maxServerConns, c.MaxConns)
	}
	return errors.Join(errs...)
}

// parseServerURL checks an OPA server's address: http on a loopback
// address, https anywhere, or unix with an absolute socket path; no user
// info, query or fragment.
func parseServerURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("required: http://127.0.0.1:8181, https://HOST:PORT or unix:///path/to/opa.sock")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		// A password in the URL would end up in logs (this message
		// included); bearer_token is the place for a credential.
		return nil, fmt.Errorf("%q must have no user info, query or fragment (use bearer_token for a credential)", u.Redacted())
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) || strings.HasSuffix(u.Path, "/") {
			return nil, fmt.Errorf("%q: a socket is written unix:///absolute/path (three slashes)", raw)
		}
	case "http", "https":
		if u.Host == "" || u.Opaque != "" {
			return nil, fmt.Errorf("%q must be an absolute http, https or unix URL", raw)
		}
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			// The input holds personal data (e-mail addresses, client
			// addresses) and the token is a credential.
			return nil, fmt.Errorf("%q: http is only allowed for a loopback address (127.0.0.1, ::1, localhost); use https or a unix socket", raw)
		}
	default:
		return nil, fmt.Errorf("%q: the scheme must be http, https or unix", raw)
	}
	return u, nil
}

// DataAPIPath is the path of OPA's Data API that evaluates entrypoint:
// data.crmgate.authz.decision is /v1/data/crmgate/authz/decision. Only a
// rule reference whose every part is a name (a string without "/") has
// one.
func DataAPIPath(entrypoint string) (string, error) {
	if err := ValidateEntrypoint(entrypoint); err != nil {
		return "", err
	}
	ref := ast.MustParseRef(entrypoint)
	var b strings.Builder
	b.WriteString("/v1/data")
	for _, t := range ref[1:] {
		s, ok := t.Value.(ast.String)
		if !ok || s == "" || strings.Contains(string(s), "/") {
			return "", fmt.Errorf("%s: part %s has no Data API path; an OPA server is asked by names (data.pkg.rule)", entrypoint, t)
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(string(s)))
	}
	return b.String(), nil
}
