// Package assertion signs the identity assertion: a short-lived JWT the
// gateway adds to every forwarded request of an identified caller, so the
// CRM can check who is calling with the gateway's public key instead of
// trusting plain X-CRM-* headers. It is bound to one request (method, path,
// request id) and lives seconds, so a copy taken from a CRM log is of no
// use elsewhere.
//
// Keys are PEM private keys (ECDSA P-256 → ES256, Ed25519 → EdDSA, RSA of
// at least 2048 bits → RS256) named by secret references. The first key
// signs; every configured key is published at /.crmgate/jwks.json so that
// verifiers keep accepting assertions of a key being retired. Each key's
// kid is its RFC 7638 thumbprint.
package assertion

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/scope"
	"github.com/crmgate/crmgate/secret"
)

// Type is the JWT "typ" header of every assertion (RFC 8725 §3.11): a
// verifier that checks it cannot be handed an ID or access token instead.
const Type = "crmgate-assertion+jwt"

// TTL bounds.
const (
	MinTTL = 5 * time.Second
	MaxTTL = 10 * time.Minute
)

// Config configures the identity assertion.
type Config struct {
	Enabled  bool          `yaml:"enabled" jsonschema_description:"Sign an identity assertion into every forwarded request of an identified caller. Default false."`
	Header   string        `yaml:"header" jsonschema_description:"Request header that carries the assertion to the CRM. Default X-CRM-Assertion. Client copies are always removed."`
	Issuer   string        `yaml:"issuer" jsonschema_description:"iss claim: the gateway's external https URL. Default oidc.external_url when OIDC is configured."`
	Audience []string      `yaml:"audience" jsonschema_description:"aud claim: who the assertion is for. Default [crm]."`
	TTL      time.Duration `yaml:"ttl" jsonschema_description:"Lifetime of an assertion, 5s to 10m. Default 60s."`
	Keys     []secret.Ref  `yaml:"keys" jsonschema_description:"Secret references (env:NAME or file:/path) to PEM private keys (ECDSA P-256, Ed25519 or RSA >= 2048 bits). The first signs; all are published at /.crmgate/jwks.json. Rotate by putting a new key first and removing the old one after verifiers have refreshed their key set."`
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.Header == "" {
		c.Header = "X-CRM-Assertion"
	}
	if len(c.Audience) == 0 {
		c.Audience = []string{"crm"}
	}
	if c.TTL == 0 {
		c.TTL = time.Minute
	}
}

var tokenRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate reports every problem at once. It expects Defaults to have run
// and secret references to be resolved. A disabled assertion is not
// checked further.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	if !tokenRe.MatchString(c.Header) {
		add("header", "%q is not a valid header name", c.Header)
	}
	if u, err := url.Parse(c.Issuer); c.Issuer == "" || err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		add("issuer", "must be the gateway's external https URL without query or fragment, got %q", c.Issuer)
	}
	for i, a := range c.Audience {
		if a == "" {
			add(fmt.Sprintf("audience[%d]", i), "must not be empty")
		}
	}
	if c.TTL < MinTTL || c.TTL > MaxTTL {
		add("ttl", "must be between %s and %s, got %s", MinTTL, MaxTTL, c.TTL)
	}
	if len(c.Keys) == 0 {
		add("keys", "at least one signing key is required; generate one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`")
	}
	seen := map[string]int{}
	for i, k := range c.Keys {
		if k.Value() == nil {
			continue // unresolved: the resolver has reported it
		}
		key, err := parseKey(k.Value())
		if err != nil {
			add(fmt.Sprintf("keys[%d]", i), "%v", err)
			continue
		}
		if j, dup := seen[key.KeyID]; dup {
			add(fmt.Sprintf("keys[%d]", i), "is the same key as keys[%d]", j)
		}
		seen[key.KeyID] = i
	}
	return errors.Join(errs...)
}

// RequestInfo binds an assertion to the request it travels with.
type RequestInfo struct {
	ID     string // the gateway's request id
	Method string
	Path   string // the normalised path the route matched
}

// Claims is the payload of an assertion. Verifiers decode into it.
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	// Kind is the subject kind: user, api_key or service.
	Kind     string   `json:"kind"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	ACR      string   `json:"acr,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	APIKeyID string   `json:"api_key_id,omitempty"`
	// RequestID, Method and Path bind the assertion to one request.
	RequestID string `json:"rid"`
	Method    string `json:"method"`
	Path      string `json:"path"`
}

// Signer signs assertions. It is safe for concurrent use.
type Signer struct {
	cfg    Config
	now    func() time.Time
	signer jose.Signer
	kid    string
	jwks   []byte
}

// New returns a Signer for cfg (validated, secrets resolved). now is the
// clock; nil means time.Now.
func New(cfg Config, now func() time.Time) (*Signer, error) {
	if now == nil {
		now = time.Now
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("no signing key")
	}
	set := jose.JSONWebKeySet{}
	var first jose.JSONWebKey
	for i, ref := range cfg.Keys {
		k, err := parseKey(ref.Value())
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if i == 0 {
			first = k
		}
		set.Keys = append(set.Keys, k.Public())
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(first.Algorithm), Key: first},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	return &Signer{cfg: cfg, now: now, signer: sig, kid: first.KeyID, jwks: doc}, nil
}

// KeyID is the kid of the signing key.
func (s *Signer) KeyID() string { return s.kid }

// Sign returns the compact JWS asserting sub for the request req.
func (s *Signer) Sign(sub *scope.Subject, req RequestInfo) (string, error) {
	if sub == nil || sub.ID == "" || sub.Kind == scope.KindAnonymous {
		return "", errors.New("no identified subject to assert")
	}
	now := s.now()
	var jti [16]byte
	_, _ = rand.Read(jti[:]) // crypto/rand.Read never fails (Go 1.24+).
	c := Claims{
		Issuer: s.cfg.Issuer, Subject: sub.ID, Audience: s.cfg.Audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(s.cfg.TTL).Unix(),
		ID:   base64.RawURLEncoding.EncodeToString(jti[:]),
		Kind: sub.Kind, Email: sub.Email, Roles: sub.Roles, Groups: sub.Groups,
		ACR: sub.ACR, AMR: sub.AMR,
		RequestID: req.ID, Method: req.Method, Path: req.Path,
	}
	if !sub.AuthTime.IsZero() {
		c.AuthTime = sub.AuthTime.Unix()
	}
	if sub.APIKey != nil {
		c.APIKeyID = sub.APIKey.ID
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// JWKS returns the JSON Web Key Set of every configured key's public half.
func (s *Signer) JWKS() []byte { return s.jwks }

// Handler serves the key set (GET and HEAD).
func (s *Signer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Content-Length", fmt.Sprint(len(s.jwks)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(s.jwks)
		}
	})
}

// parseKey reads one PEM private key and names it by its thumbprint.
func parseKey(b []byte) (jose.JSONWebKey, error) {
	block, rest := pem.Decode(b)
	if block == nil {
		return jose.JSONWebKey{}, errors.New("not a PEM private key")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return jose.JSONWebKey{}, errors.New("more than one PEM block: one key per reference")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("parsing the private key: %w", err)
	}
	k := jose.JSONWebKey{Key: key, Use: "sig"}
	switch p := key.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return jose.JSONWebKey{}, errors.New("ECDSA keys must use curve P-256 (ES256)")
		}
		k.Algorithm = string(jose.ES256)
	case ed25519.PrivateKey:
		k.Algorithm = string(jose.EdDSA)
	case *rsa.PrivateKey:
		if p.N.BitLen() < 2048 {
			return jose.JSONWebKey{}, fmt.Errorf("RSA keys must have at least 2048 bits, this one has %d", p.N.BitLen())
		}
		k.Algorithm = string(jose.RS256)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("unsupported key type %T: use ECDSA P-256, Ed25519 or RSA", key)
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// GenerateKeyPEM returns a new ECDSA P-256 private key as PKCS #8 PEM.
func GenerateKeyPEM() ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
