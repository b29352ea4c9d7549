package certs

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/crmgate/crmgate/fielderr"
)

// Sources of certificates, the values of Config.Source.
const (
	SourceACME  = "acme"
	SourceFiles = "files"
	SourceDevCA = "devca"
)

// ACME challenge types (RFC 8555 §8.3, RFC 8737), the values of
// ACMEConfig.Challenges.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// LetsEncryptDirectory is the default ACME directory: Let's Encrypt
// production.
const LetsEncryptDirectory = "https://acme-v02.api.letsencrypt.org/directory"

// Config selects and configures the certificate source. Only the section
// named by Source is used; the others are ignored. The zero value is not
// valid: Source is required.
type Config struct {
	Source string      `yaml:"source" jsonschema:"enum=acme,enum=files,enum=devca" jsonschema_description:"Where the serving certificates come from: acme (an ACME CA such as Let's Encrypt), files (a PEM certificate and key, reloaded on change) or devca (a development CA created on first start; for demos and tests only)."`
	ACME   ACMEConfig  `yaml:"acme" jsonschema_description:"ACME settings; used when source is acme."`
	Files  FilesConfig `yaml:"files" jsonschema_description:"Certificate files; used when source is files."`
	DevCA  DevCAConfig `yaml:"devca" jsonschema_description:"Development CA; used when source is devca."`
}

// ACMEConfig configures certificates from an ACME CA.
type ACMEConfig struct {
	Email            string   `yaml:"email" jsonschema_description:"Contact address of the ACME account. Required."`
	Domains          []string `yaml:"domains" jsonschema_description:"DNS names to obtain certificates for. At least one; wildcards are not supported (they need DNS-01)."`
	DirectoryURL     string   `yaml:"directory_url" jsonschema_description:"HTTPS URL of the ACME directory. Default Let's Encrypt production (https://acme-v02.api.letsencrypt.org/directory)."`
	TrustedRootsFile string   `yaml:"trusted_roots_file" jsonschema_description:"PEM file of the CA certificates that sign the ACME server's own HTTPS certificate, for private ACME servers such as step-ca or Pebble. Empty: the system roots."`
	Storage          string   `yaml:"storage" jsonschema_description:"Folder where accounts, keys and certificates are stored (created 0700). Required. Replicas should share it."`
	Challenges       []string `yaml:"challenges" jsonschema_description:"Challenge types to answer: http-01 (needs the plain-HTTP listener reachable on port 80) and tls-alpn-01 (answered on the HTTPS listener, reachable on port 443). Default both."`
	AltHTTPPort      int      `yaml:"alt_http_port" jsonschema_description:"Port the plain-HTTP listener is bound to when port 80 is forwarded to another port. 0: 80."`
	AltTLSALPNPort   int      `yaml:"alt_tls_alpn_port" jsonschema_description:"Port the HTTPS listener is bound to when port 443 is forwarded to another port. 0: 443."`
}

// FilesConfig names a PEM certificate and key on disk.
type FilesConfig struct {
	Cert string `yaml:"cert" jsonschema_description:"PEM file of the certificate, leaf first, then any intermediates. Reloaded when it changes."`
	Key  string `yaml:"key" jsonschema_description:"PEM file of the certificate's private key (PKCS #8, PKCS #1 or SEC 1). Reloaded when it changes."`
}

// DevCAConfig configures the development CA.
type DevCAConfig struct {
	Dir   string   `yaml:"dir" jsonschema_description:"Folder holding ca.pem, ca-key.pem, cert.pem and key.pem; created (0700) with a new CA and certificate if missing. Required."`
	Hosts []string `yaml:"hosts" jsonschema_description:"DNS names and IP addresses the certificate is for. Default localhost, 127.0.0.1 and ::1."`
}

// Defaults fills unset fields of the selected source.
func (c *Config) Defaults() {
	switch c.Source {
	case SourceACME:
		if c.ACME.DirectoryURL == "" {
			c.ACME.DirectoryURL = LetsEncryptDirectory
		}
		if len(c.ACME.Challenges) == 0 {
			c.ACME.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
		}
	case SourceDevCA:
		if len(c.DevCA.Hosts) == 0 {
			c.DevCA.Hosts = []string{"localhost", "127.0.0.1", "::1"}
		}
	}
}

// Validate reports every problem of the selected source at once, as
// *fielderr.Error values with key paths relative to Config (acme.email).
// It expects Defaults to have run and touches no files: missing or bad
// files are reported by Manager.Start.
func (c Config) Validate() error {
	var errs []error
	switch c.Source {
	case SourceACME:
		errs = c.ACME.validate()
	case SourceFiles:
		errs = c.Files.validate()
	case SourceDevCA:
		errs = c.DevCA.validate()
	case "":
		errs = append(errs, fielderr.New("source", "required (acme, files or devca)"))
	default:
		errs = append(errs, fielderr.New("source", "%q is not allowed (acme, files or devca)", c.Source))
	}
	return errors.Join(errs...)
}

func (c ACMEConfig) validate() []error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	if c.Email == "" {
		add("acme.email", "required when source is acme")
	} else if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
		add("acme.email", "%q is not an email address (name@example.com, no display name)", c.Email)
	}

	if len(c.Domains) == 0 {
		add("acme.domains", "at least one DNS name is required when source is acme")
	}
	seen := map[string]int{}
	for i, d := range c.Domains {
		path := fmt.Sprintf("acme.domains[%d]", i)
		switch {
		case strings.HasPrefix(d, "*."):
			add(path, "%q: wildcard names need the DNS-01 challenge, which is not supported", d)
		case isIP(d):
			add(path, "%q: IP addresses are not supported; use a DNS name", d)
		case !isDNSName(d):
			add(path, "%q is not a DNS name (letters, digits and hyphens in dot-separated labels)", d)
		}
		if j, dup := seen[strings.ToLower(d)]; dup {
			add(path, "%q is already acme.domains[%d]", d, j)
		}
		seen[strings.ToLower(d)] = i
	}

	if u, err := url.Parse(c.DirectoryURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		// RFC 8555 §6.1: ACME is spoken over HTTPS only.
		add("acme.directory_url", "%q is not an https URL (e.g. %s)", c.DirectoryURL, LetsEncryptDirectory)
	}

	if c.Storage == "" {
		add("acme.storage", "required when source is acme: a folder for accounts, keys and certificates")
	}

	for i, ch := range c.Challenges {
		path := fmt.Sprintf("acme.challenges[%d]", i)
		if ch != ChallengeHTTP01 && ch != ChallengeTLSALPN01 {
			add(path, "%q is not allowed (http-01, tls-alpn-01)", ch)
		} else if j := slices.Index(c.Challenges, ch); j < i {
			add(path, "%q is already acme.challenges[%d]", ch, j)
		}
	}

	for _, p := range []struct {
		key  string
		port int
	}{{"acme.alt_http_port", c.AltHTTPPort}, {"acme.alt_tls_alpn_port", c.AltTLSALPNPort}} {
		if p.port < 0 || p.port > 65535 {
			add(p.key, "%d is not a port (1-65535, or 0 for the standard port)", p.port)
		}
	}
	if c.AltHTTPPort > 0 && c.AltHTTPPort == c.AltTLSALPNPort {
		add("acme.alt_tls_alpn_port", "must differ from acme.alt_http_port")
	}
	return errs
}

func (c FilesConfig) validate() []error {
	var errs []error
	if c.Cert == "" {
		errs = append(errs, fielderr.New("files.cert", "required when source is files: path of the PEM certificate"))
	}
	if c.Key == "" {
		errs = append(errs, fielderr.New("files.key", "required when source is files: path of the PEM private key"))
	}
	return errs
}

func (c DevCAConfig) validate() []error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, fielderr.New("devca.dir", "required when source is devca: a folder for the CA and certificate"))
	}
	seen := map[string]int{}
	for i, h := range c.Hosts {
		path := fmt.Sprintf("devca.hosts[%d]", i)
		key := strings.ToLower(h)
		if a, err := netip.ParseAddr(h); err == nil {
			if a.Zone() != "" {
				errs = append(errs, fielderr.New(path, "%q: IP addresses with a zone are not allowed", h))
			}
			key = a.String()
		} else if !isDNSName(h) {
			errs = append(errs, fielderr.New(path, "%q is not a DNS name or IP address", h))
		}
		if j, dup := seen[key]; dup {
			errs = append(errs, fielderr.New(path, "%q is already devca.hosts[%d]", h, j))
		}
		seen[key] = i
	}
	return errs
}

// isDNSName reports whether s is a host name by RFC 1123 §2.1: labels of
// 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
// 253 characters at most. A single label (localhost) is allowed.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return !isIP(s)
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
