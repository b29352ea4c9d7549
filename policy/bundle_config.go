package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

// Defaults and bounds of BundleConfig.
const (
	// DefaultBundleKeyID is the key id `opa build --signing-key` writes
	// when given no other.
	DefaultBundleKeyID = "default"
	// DefaultBundleAlgorithm is OPA's default signing algorithm.
	DefaultBundleAlgorithm    = "RS256"
	DefaultBundlePollInterval = 60 * time.Second
	MinBundlePollInterval     = time.Second
	DefaultBundleTimeout      = 30 * time.Second
	// DefaultBundleMaxBytes bounds a bundle, compressed and uncompressed
	// alike, as a policy folder is bounded.
	DefaultBundleMaxBytes = maxSetBytes
	minBundleMaxBytes     = 1 << 10
	maxBundleMaxBytes     = 1 << 30
	minRSABits            = 2048
	minHMACBytes          = 32
)

// BundleAlgorithms are the signature algorithms a bundle may be verified
// with: those OPA's bundle signing supports.
var BundleAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"HS256", "HS384", "HS512",
}

// BundleConfig says where a policy bundle comes from and how its signature
// is verified. Exactly one of File and URL is set. Verification is on
// unless InsecureSkipVerify is set: then PublicKey is required.
type BundleConfig struct {
	File               string        `yaml:"file" jsonschema_description:"Path of a bundle built by opa build (a .tar.gz). Exactly one of file and url is required."`
	URL                string        `yaml:"url" jsonschema_description:"https URL the bundle is fetched from (http only for a loopback address: 127.0.0.1, ::1, localhost), polled every poll_interval with If-None-Match."`
	PublicKey          secret.Ref    `yaml:"public_key" jsonschema_description:"Secret reference (env:NAME or file:/path) to the PEM public key (or certificate) that verifies the bundle's signature, or to the shared secret for HS256, HS384 and HS512 (at least 32 bytes). Required unless insecure_skip_verify is true. A private key is refused."`
	KeyID              string        `yaml:"key_id" jsonschema_description:"Name of public_key: the signature's kid must name it. Default default, as opa build writes."`
	Algorithm          string        `yaml:"algorithm" jsonschema_description:"Signature algorithm of public_key: RS256 (default), RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, HS256, HS384 or HS512. The signature is checked with this algorithm whatever its header says."`
	Scope              string        `yaml:"scope" jsonschema_description:"Scope the signature must state (its scope claim); empty: a signature that states no scope."`
	ExcludeFiles       []string      `yaml:"exclude_files" jsonschema_description:"Glob patterns (path.Match, relative to the bundle root) of files left out of verification, e.g. README.md. A bundle in which a pattern matches a policy, data or manifest file is refused."`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify" jsonschema_description:"Accept bundles without verifying any signature (development only); every load logs a warning. Default false: an unsigned bundle, or one whose signature does not verify, is refused."`
	PollInterval       time.Duration `yaml:"poll_interval" jsonschema_description:"How often the url is fetched again (with ±10% jitter) when reload is watch. Default 60s, at least 1s. url only."`
	Timeout            time.Duration `yaml:"timeout" jsonschema_description:"Longest fetch of the url, from connecting to the last byte. Default 30s. url only."`
	CAFile             string        `yaml:"ca_file" jsonschema_description:"PEM file of the CAs that the url's TLS certificate must chain to. Empty: the system roots. url only."`
	BearerToken        secret.Ref    `yaml:"bearer_token" jsonschema_description:"Secret reference (env:NAME or file:/path) to a token sent as Authorization: Bearer to the url. Empty: none. url only."`
	MaxBytes           int64         `yaml:"max_bytes" jsonschema_description:"Largest bundle accepted, compressed and uncompressed alike (a gzip bomb stops at this size). Default 67108864 (64 MiB); at least 1024, at most 1073741824."`
}

// Defaults fills unset fields with their defaults. The key id and
// algorithm are left empty when verification is off, so that a key
// configured for nothing is reported.
func (c *BundleConfig) Defaults() {
	if !c.InsecureSkipVerify {
		if c.KeyID == "" {
			c.KeyID = DefaultBundleKeyID
		}
		if c.Algorithm == "" {
			c.Algorithm = DefaultBundleAlgorithm
		}
	}
	if c.URL != "" {
		if c.PollInterval == 0 {
			c.PollInterval = DefaultBundlePollInterval
		}
		if c.Timeout == 0 {
			c.Timeout = DefaultBundleTimeout
		}
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultBundleMaxBytes
	}
}

// Validate reports every problem at once. It expects Defaults to have run
// and the secret references to be resolved; it reads neither the bundle
// nor the CA file.
func (c BundleConfig) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }

	switch {
	case c.File != "" && c.URL != "":
		add("url", "file and url exclude each other: a set comes from one bundle")
	case c.File == "" && c.URL == "":
		add("", "file or url is required: where the bundle comes from")
	case c.File != "":
		if strings.ContainsRune(c.File, 0) || strings.HasSuffix(c.File, "/") {
			add("file", "%q is not a file path", c.File)
		}
	default:
		if err := checkBundleURL(c.URL); err != nil {
			add("url", "%v", err)
		}
	}

	if c.URL == "" {
		// Settings of a fetch, for a bundle that is not fetched.
		if c.PollInterval != 0 {
			add("poll_interval", "only applies to url")
		}
		if c.Timeout != 0 {
			add("timeout", "only applies to url")
		}
		if c.CAFile != "" {
			add("ca_file", "only applies to url")
		}
		if !c.BearerToken.IsZero() {
			add("bearer_token", "only applies to url")
		}
	} else {
		if c.PollInterval < MinBundlePollInterval {
			add("poll_interval", "must be at least %s, got %s", MinBundlePollInterval, c.PollInterval)
		}
		if c.Timeout <= 0 || c.Timeout > 10*time.Minute {
			add("timeout", "must be positive and at most 10m, got %s", c.Timeout)
		}
		if strings.ContainsRune(c.CAFile, 0) {
			add("ca_file", "%q is not a file path", c.CAFile)
		}
	}
	if c.MaxBytes < minBundleMaxBytes || c.MaxBytes > maxBundleMaxBytes {
		add("max_bytes", "must be between %d and %d, got %d", minBundleMaxBytes, maxBundleMaxBytes, c.MaxBytes)
	}

	if c.InsecureSkipVerify {
		// Verification settings that would silently do nothing.
		if !c.PublicKey.IsZero() {
			add("public_key", "not used with insecure_skip_verify: true; remove one of them")
		}
		for _, f := range []struct {
			key string
			set bool
		}{{"key_id", c.KeyID != ""}, {"algorithm", c.Algorithm != ""}, {"scope", c.Scope != ""}, {"exclude_files", len(c.ExcludeFiles) > 0}} {
			if f.set {
				add(f.key, "not used with insecure_skip_verify: true")
			}
		}
		return errors.Join(errs...)
	}

	if !slices.Contains(BundleAlgorithms, c.Algorithm) {
		add("algorithm", "%q is not allowed (%s)", c.Algorithm, strings.Join(BundleAlgorithms, ", "))
	}
	switch k := c.PublicKey; {
	case k.IsZero():
		add("public_key", "required: a secret reference (env:NAME or file:/path) to the PEM public key that verifies the bundle's signature (the shared secret for HS256); or insecure_skip_verify: true to accept unsigned bundles")
	case k.Value() == nil:
		// Not resolved: the config package reports why at this path.
	case slices.Contains(BundleAlgorithms, c.Algorithm):
		if err := checkVerificationKey(c.Algorithm, k.Value()); err != nil {
			add("public_key", "secret %s: %v", k, err)
		}
	}
	if c.KeyID == "" || strings.ContainsFunc(c.KeyID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		add("key_id", "%q is not a key id", c.KeyID)
	}
	for i, p := range c.ExcludeFiles {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			add(fmt.Sprintf("exclude_files[%d]", i), "%q is not a glob pattern (path.Match)", p)
		}
	}
	return errors.Join(errs...)
}

// checkBundleURL accepts an absolute https URL, or an http one whose host
// is a loopback address, without user info or fragment.
func checkBundleURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL", raw)
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("%q must be an absolute https URL", raw)
	case u.User != nil || u.Fragment != "" || strings.Contains(raw, "#"):
		// A password in the URL would end up in logs (this message
		// included); bearer_token is the place for a credential.
		return fmt.Errorf("%q must have no user info or fragment (use bearer_token for a credential)", u.Redacted())
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q: http is only allowed for a loopback address (127.0.0.1, ::1, localhost); use https", raw)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// checkVerificationKey checks that key can verify signatures of alg: a
// PEM public key (or certificate) of the algorithm's family, or a shared
// secret long enough for HMAC. Private keys are refused: the gateway only
// verifies, and a signing key on every replica could sign any bundle.
func checkVerificationKey(alg string, key []byte) error {
	if strings.HasPrefix(alg, "HS") {
		if len(key) < minHMACBytes {
			return fmt.Errorf("%d bytes, at least %d are required for %s", len(key), minHMACBytes, alg)
		}
		return nil
	}
	block, _ := pem.Decode(key)
	if block == nil {
		return fmt.Errorf("no PEM block; %s needs a PEM public key", alg)
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE") {
			return errors.New("holds a private key; give the gateway the public key only (openssl pkey -pubout)")
		}
		return fmt.Errorf("a PEM %q block; a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE is required", block.Type)
	}
	if err != nil {
		return fmt.Errorf("PEM %s: %v", block.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if alg[:2] != "RS" && alg[:2] != "PS" {
			return fmt.Errorf("an RSA key cannot verify %s", alg)
		}
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("an RSA key of %d bits, at least %d are required", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey:
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if want == nil {
			return fmt.Errorf("an ECDSA key cannot verify %s", alg)
		}
		if k.Curve != want {
			return fmt.Errorf("an ECDSA key on %s cannot verify %s (it needs %s)", k.Curve.Params().Name, alg, want.Params().Name)
		}
	default:
		return fmt.Errorf("a %T cannot verify %s", pub, alg)
	}
	return nil
}

// StandInVerificationKey returns a freshly generated key of the kind alg
// verifies with ("" is DefaultBundleAlgorithm): a PEM public key, or
// random bytes for HS*. Tools that check a configuration without reading
// its secrets give it in place of public_key; it verifies nothing anyone
// signed.
func StandInVerificationKey(alg string) ([]byte, error) {
	if alg == "" {
		alg = DefaultBundleAlgorithm
	}
	var pub any
	switch {
	case strings.HasPrefix(alg, "HS"):
		b := make([]byte, minHMACBytes)
		_, err := rand.Read(b)
		return b, err
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		k, err := rsa.GenerateKey(rand.Reader, minRSABits)
		if err != nil {
			return nil, err
		}
		pub = &k.PublicKey
	default:
		curve := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if curve == nil {
			return nil, fmt.Errorf("algorithm %q has no key kind", alg)
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			return nil, err
		}
		pub = &k.PublicKey
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
