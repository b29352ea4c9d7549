package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/fielderr"
	"github.com/crmgate/crmgate/secret"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.Defaults()
	want := Config{
		Dir:          "policies",
		Entrypoint:   "data.crmgate.authz.decision",
		EvalTimeout:  50 * time.Millisecond,
		Headers:      DefaultHeaders,
		Reload:       ReloadWatch,
		Debounce:     200 * time.Millisecond,
		TestTimeout:  30 * time.Second,
		Reuse:        ReuseOn,
		ReuseEntries: DefaultReuseEntries,
	}
	if diff := cmp.Diff(c, want); diff != "" {
		t.Errorf("Defaults() (-got +want):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
	// An explicit empty list gives the policy no header at all.
	c = Config{Headers: []string{}}
	c.Defaults()
	if len(c.Headers) != 0 {
		t.Errorf("Defaults() replaced an explicit empty header list with %v", c.Headers)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"entrypoint not data", func(c *Config) { c.Entrypoint = "input.x.y" }, []string{"entrypoint"}},
		{"entrypoint too short", func(c *Config) { c.Entrypoint = "data.x" }, []string{"entrypoint"}},
		{"entrypoint variable", func(c *Config) { c.Entrypoint = "data.x[y].z" }, []string{"entrypoint"}},
		{"entrypoint syntax", func(c *Config) { c.Entrypoint = "data..x" }, []string{"entrypoint"}},
		{"timeouts", func(c *Config) { c.EvalTimeout = -1; c.TestTimeout = -1; c.Debounce = -1 }, []string{"eval_timeout", "test_timeout", "debounce"}},
		{"eval timeout too long", func(c *Config) { c.EvalTimeout = time.Minute }, []string{"eval_timeout"}},
		{"secret headers", func(c *Config) { c.Headers = []string{"Cookie", "authorization", "X-Api-Key"} }, []string{"headers[0]", "headers[1]", "headers[2]"}},
		{"header syntax and repeats", func(c *Config) { c.Headers = []string{"a b", "x-a", "X-A"} }, []string{"headers[0]", "headers[2]"}},
		{"reload", func(c *Config) { c.Reload = "poll" }, []string{"reload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.Defaults()
			tt.edit(&c)
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				fe, ok := e.(*fielderr.Error)
				if !ok {
					t.Errorf("Validate error %v is not a *fielderr.Error", e)
					continue
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.paths)
			slices.Sort(want)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("Validate paths (-got +want):\n%s", diff)
			}
		})
	}
}

func TestReadSource(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.rego":              "package a\n",
		"sub/b.yaml":          "x: 1\n",
		"sub/c.json":          "{}",
		"README.md":           "not a policy",
		".a.rego.swp":         "editor swap file",
		".git/config.yaml":    "hidden folder",
		"..2026_01_02/d.rego": "a ConfigMap's hidden data folder",
	})
	src, err := ReadSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src.Files(), []string{"a.rego", "sub/b.yaml", "sub/c.json"}); diff != "" {
		t.Errorf("Files() (-got +want):\n%s", diff)
	}
	if len(src.Revision()) != 32 {
		t.Errorf("Revision() = %q, want 32 hex digits", src.Revision())
	}

	// The revision follows the content and only the content.
	again, _ := ReadSource(dir)
	if again.Revision() != src.Revision() {
		t.Errorf("same content, different revisions %s %s", again.Revision(), src.Revision())
	}
	writeFiles(t, dir, map[string]string{"README.md": "changed, not a policy"})
	if again, _ := ReadSource(dir); again.Revision() != src.Revision() {
		t.Errorf("a change to a non-policy file changed the revision")
	}
	writeFiles(t, dir, map[string]string{"sub/c.json": `{"k": 1}`})
	if again, _ := ReadSource(dir); again.Revision() == src.Revision() {
		t.Errorf("a change to a data file kept the revision")
	}

	// A renamed file is a new revision even with the same bytes.
	one, _ := NewSource("x", map[string][]byte{"a.rego": []byte("package a\n")})
	two, _ := NewSource("x", map[string][]byte{"b.rego": []byte("package a\n")})
	if one.Revision() == two.Revision() {
		t.Errorf("renaming a file kept the revision")
	}

	// The folder may be a symbolic link, as mounted volumes are.
	link := filepath.Join(t.TempDir(), "policies")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal("creating a symbolic link:", err)
	}
	viaLink, err := ReadSource(link)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(viaLink.Files(), []string{"a.rego", "sub/b.yaml", "sub/c.json"}); diff != "" {
		t.Errorf("Files() through a link (-got +want):\n%s", diff)
	}
}

func TestNewSourceRejectsPaths(t *testing.T) {
	for _, name := range []string{"../a.rego", "/abs/a.rego", "a.txt", ".hidden.rego"} {
		if _, err := NewSource("x", map[string][]byte{name: nil}); err == nil {
			t.Errorf("NewSource(%q) = nil error, want a refusal", name)
		}
	}
}

func TestBundleConfigDefaults(t *testing.T) {
	c := Config{Bundle: &BundleConfig{URL: "https://bundles.example.com/crm.tar.gz"}}
	c.Defaults()
	want := BundleConfig{
		URL:          "https://bundles.example.com/crm.tar.gz",
		KeyID:        "default",
		Algorithm:    "RS256",
		PollInterval: 60 * time.Second,
		Timeout:      30 * time.Second,
		MaxBytes:     64 << 20,
	}
	if diff := cmp.Diff(*c.Bundle, want, cmp.AllowUnexported(secret.Ref{})); diff != "" {
		t.Errorf("Defaults() (-got +want):\n%s", diff)
	}
	// With a bundle, the folder is not defaulted: a dir written next to
	// a bundle is told apart from the default.
	if c.Dir != "" {
		t.Errorf("Defaults() set dir %q next to a bundle", c.Dir)
	}
	// Without verification nothing names a key.
	c = Config{Bundle: &BundleConfig{File: "b.tar.gz", InsecureSkipVerify: true}}
	c.Defaults()
	if c.Bundle.KeyID != "" || c.Bundle.Algorithm != "" || c.Bundle.PollInterval != 0 {
		t.Errorf("Defaults(insecure file) = %+v", *c.Bundle)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(insecure file) = %v", err)
	}
}

func TestBundleConfigValidate(t *testing.T) {
	ec := ecSigner(t)
	rs := rsaSigner(t, "RS256")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384 := pemKeyPair(t, "ES384", p384, &p384.PublicKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rs1024 := pemKeyPair(t, "RS256", small, &small.PublicKey)
	ref := func(b []byte) secret.Ref { return secret.FromValue(b) }
	file := func(c *Config) {
		c.Bundle = &BundleConfig{File: "/etc/crmgate/bundle.tar.gz", PublicKey: ref(ec.pub), Algorithm: "ES256"}
	}
	url := func(u string) func(*Config) {
		return func(c *Config) { c.Bundle = &BundleConfig{URL: u, PublicKey: ref(ec.pub), Algorithm: "ES256"} }
	}
	with := func(base func(*Config), edit func(*BundleConfig)) func(*Config) {
		return func(c *Config) { base(c); edit(c.Bundle) }
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		paths []string
	}{
		{"file", file, nil},
		{"https", url("https://bundles.example.com/crm.tar.gz?v=1"), nil},
		{"http on loopback", url("http://127.0.0.1:8181/b.tar.gz"), nil},
		{"http on IPv6 loopback", url("http://[::1]:8181/b.tar.gz"), nil},
		{"http on localhost", url("http://localhost/b.tar.gz"), nil},
		{"RSA key", with(file, func(b *BundleConfig) { b.PublicKey = ref(rs.pub); b.Algorithm = "PS512" }), nil},
		{"certificate of an RSA key", with(file, func(b *BundleConfig) { b.PublicKey = ref(selfSignedPEM(t, rs)); b.Algorithm = "RS256" }), nil},
		{"HMAC secret", with(file, func(b *BundleConfig) { b.PublicKey = ref(hmacSigner(t).pub); b.Algorithm = "HS256" }), nil},
		{"exclusions", with(file, func(b *BundleConfig) { b.ExcludeFiles = []string{"README.md", "docs/*"} }), nil},

		{"dir and bundle", func(c *Config) { file(c); c.Dir = "policies" }, []string{"dir"}},
		{"neither file nor url", func(c *Config) { c.Bundle = &BundleConfig{PublicKey: ref(ec.pub), Algorithm: "ES256"} }, []string{"bundle"}},
		{"file and url", with(file, func(b *BundleConfig) { b.URL = "https://x/b.tar.gz" }), []string{"bundle.url"}},
		{"http elsewhere", url("http://bundles.example.com/b.tar.gz"), []string{"bundle.url"}},
		{"http on a private address", url("http://10.0.0.1/b.tar.gz"), []string{"bundle.url"}},
		{"user info", url("https://user:pass@bundles.example.com/b.tar.gz"), []string{"bundle.url"}},
		{"another scheme", url("ftp://bundles.example.com/b.tar.gz"), []string{"bundle.url"}},
		{"relative url", url("/b.tar.gz"), []string{"bundle.url"}},
		{"no key", with(file, func(b *BundleConfig) { b.PublicKey = secret.Ref{} }), []string{"bundle.public_key"}},
		{"a private key", with(file, func(b *BundleConfig) { b.PublicKey = ref([]byte(ec.priv)) }), []string{"bundle.public_key"}},
		{"not PEM", with(file, func(b *BundleConfig) { b.PublicKey = ref([]byte("q8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0Ga8Ue2Io4Ak7")) }), []string{"bundle.public_key"}},
		{"RSA key for ES256", with(file, func(b *BundleConfig) { b.PublicKey = ref(rs.pub) }), []string{"bundle.public_key"}},
		{"P-384 key for ES256", with(file, func(b *BundleConfig) { b.PublicKey = ref(ec384.pub) }), []string{"bundle.public_key"}},
		{"ECDSA key for RS256", with(file, func(b *BundleConfig) { b.Algorithm = "RS256" }), []string{"bundle.public_key"}},
		{"RSA key of 1024 bits", with(file, func(b *BundleConfig) { b.PublicKey = ref(rs1024.pub); b.Algorithm = "RS256" }), []string{"bundle.public_key"}},
		{"short HMAC secret", with(file, func(b *BundleConfig) { b.PublicKey = ref([]byte("short")); b.Algorithm = "HS256" }), []string{"bundle.public_key"}},
		{"algorithm", with(file, func(b *BundleConfig) { b.Algorithm = "none" }), []string{"bundle.algorithm"}},
		{"key id", with(file, func(b *BundleConfig) { b.KeyID = "a\nb" }), []string{"bundle.key_id"}},
		{"exclusion syntax", with(file, func(b *BundleConfig) { b.ExcludeFiles = []string{"[", ""} }), []string{"bundle.exclude_files[0]", "bundle.exclude_files[1]"}},
		{"insecure with verification settings", with(file, func(b *BundleConfig) {
			b.InsecureSkipVerify = true
			b.KeyID = "prod"
			b.Scope = "prod"
			b.ExcludeFiles = []string{"README.md"}
		}), []string{"bundle.public_key", "bundle.algorithm", "bundle.key_id", "bundle.scope", "bundle.exclude_files"}},
		{"fetch settings for a file", with(file, func(b *BundleConfig) {
			b.PollInterval = time.Second
			b.Timeout = time.Second
			b.CAFile = "/etc/ssl/ca.pem"
			b.BearerToken = ref([]byte("q8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0Ga8Ue2Io4Ak7"))
		}), []string{"bundle.poll_interval", "bundle.timeout", "bundle.ca_file", "bundle.bearer_token"}},
		{"poll too often", with(url("https://x/b.tar.gz"), func(b *BundleConfig) { b.PollInterval = 100 * time.Millisecond }), []string{"bundle.poll_interval"}},
		{"timeout", with(url("https://x/b.tar.gz"), func(b *BundleConfig) { b.Timeout = -time.Second }), []string{"bundle.timeout"}},
		{"max_bytes too small", with(file, func(b *BundleConfig) { b.MaxBytes = 10 }), []string{"bundle.max_bytes"}},
		{"max_bytes too large", with(file, func(b *BundleConfig) { b.MaxBytes = 2 << 30 }), []string{"bundle.max_bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			tt.edit(&c)
			c.Defaults()
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				fe, ok := e.(*fielderr.Error)
				if !ok {
					t.Errorf("Validate error %v is not a *fielderr.Error", e)
					continue
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			want := slices.Clone(tt.paths)
			slices.Sort(want)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("Validate paths (-got +want):\n%s", diff)
			}
		})
	}
}

// selfSignedPEM is a PEM certificate of s's key.
func selfSignedPEM(t *testing.T, s bundleKey) []byte {
	t.Helper()
	block, _ := pem.Decode([]byte(s.priv))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sk := key.(crypto.Signer)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, sk.Public(), sk)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestServerConfigDefaults(t *testing.T) {
	c := Config{Server: &ServerConfig{URL: "http://127.0.0.1:8181"}}
	c.Defaults()
	want := Config{
		Server:     &ServerConfig{URL: "http://127.0.0.1:8181", Timeout: 100 * time.Millisecond, MaxIdleConns: 128},
		Entrypoint: DefaultEntrypoint,
		Headers:    DefaultHeaders,
	}
	if diff := cmp.Diff(c, want, cmp.AllowUnexported(secret.Ref{})); diff != "" {
		t.Errorf("Defaults() (-got +want):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults) = %v", err)
	}
}

func TestServerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		// raw is applied before Defaults, edit after.
		raw   func(*Config)
		edit  func(*ServerConfig)
		paths []string
	}{
		{"loopback http", nil, nil, nil},
		{"localhost and a prefix", nil, func(s *ServerConfig) { s.URL = "http://localhost:8181/opa/" }, nil},
		{"ipv6 loopback", nil, func(s *ServerConfig) { s.URL = "http://[::1]:8181" }, nil},
		{"unix socket", nil, func(s *ServerConfig) { s.URL = "unix:///run/opa/opa.sock" }, nil},
		{"https with TLS files", nil, func(s *ServerConfig) {
			s.URL, s.CAFile, s.ClientCert, s.ClientKey = "https://opa.example.com:8443", "/etc/ca.pem", "/etc/c.pem", "/etc/k.pem"
		}, nil},
		{"no url", nil, func(s *ServerConfig) { s.URL = "" }, []string{"server.url"}},
		// The input holds personal data and the token is a credential.
		{"http off loopback", nil, func(s *ServerConfig) { s.URL = "http://opa.internal:8181" }, []string{"server.url"}},
		{"user info", nil, func(s *ServerConfig) { s.URL = "https://u:p@opa.example.com" }, []string{"server.url"}},
		{"query", nil, func(s *ServerConfig) { s.URL = "http://127.0.0.1:8181?x=1" }, []string{"server.url"}},
		{"fragment", nil, func(s *ServerConfig) { s.URL = "http://127.0.0.1:8181#x" }, []string{"server.url"}},
		{"other scheme", nil, func(s *ServerConfig) { s.URL = "grpc://127.0.0.1:9191" }, []string{"server.url"}},
		{"relative socket", nil, func(s *ServerConfig) { s.URL = "unix://run/opa.sock" }, []string{"server.url"}},
		{"no host", nil, func(s *ServerConfig) { s.URL = "http:///v1" }, []string{"server.url"}},
		{"timeouts", nil, func(s *ServerConfig) { s.Timeout = -1 }, []string{"server.timeout"}},
		{"timeout too long", nil, func(s *ServerConfig) { s.Timeout = time.Minute }, []string{"server.timeout"}},
		{"pool", nil, func(s *ServerConfig) { s.MaxIdleConns, s.MaxConns = -1, -1 }, []string{"server.max_conns", "server.max_idle_conns"}},
		{"TLS files on http", nil, func(s *ServerConfig) { s.CAFile, s.ClientCert, s.ClientKey = "/ca", "/c", "/k" },
			[]string{"server.ca_file", "server.client_cert", "server.client_key"}},
		{"client cert without key", nil, func(s *ServerConfig) { s.URL, s.ClientCert = "https://opa.example.com", "/c" }, []string{"server.client_key"}},
		{"entrypoint without a path", func(c *Config) { c.Entrypoint = `data.x["a/b"]` }, nil, []string{"entrypoint"}},
		// Settings of a set the gateway evaluates itself.
		{"with dir", func(c *Config) { c.Dir = "policies" }, nil, []string{"dir"}},
		{"with bundle", func(c *Config) { c.Bundle = &BundleConfig{File: "/b.tar.gz", InsecureSkipVerify: true} }, nil, []string{"bundle"}},
		{"with shadow", func(c *Config) { c.Shadow = &ShadowConfig{Dir: "candidate"} }, nil, []string{"shadow"}},
		{"with set settings", func(c *Config) {
			c.EvalTimeout, c.Reload, c.Debounce, c.TestTimeout = time.Second, ReloadOff, time.Second, time.Second
		}, nil, []string{"debounce", "eval_timeout", "reload", "test_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Server: &ServerConfig{URL: "http://127.0.0.1:8181"}}
			if tt.raw != nil {
				tt.raw(&c)
			}
			c.Defaults()
			if tt.edit != nil {
				tt.edit(c.Server)
			}
			var got []string
			for _, e := range fielderr.Flatten(c.Validate()) {
				fe, ok := e.(*fielderr.Error)
				if !ok {
					t.Errorf("Validate error %v is not a *fielderr.Error", e)
					continue
				}
				got = append(got, fe.Path)
			}
			slices.Sort(got)
			if diff := cmp.Diff(got, tt.paths); diff != "" {
				t.Errorf("Validate() paths (-got +want):\n%s\n%v", diff, c.Validate())
			}
		})
	}
}

func TestDataAPIPath(t *testing.T) {
	for ep, want := range map[string]string{
		"data.crmgate.authz.decision":  "/v1/data/crmgate/authz/decision",
		`data.crmgate["a b"].decision`: "/v1/data/crmgate/a%20b/decision",
		"data.x.y":                     "/v1/data/x/y",
	} {
		if got, err := DataAPIPath(ep); err != nil || got != want {
			t.Errorf("DataAPIPath(%s) = %q, %v, want %q", ep, got, err, want)
		}
	}
	for _, ep := range []string{`data.x["a/b"]`, "data.x[1]", `data.x[""]`, "data.x", "input.x.y"} {
		if got, err := DataAPIPath(ep); err == nil {
			t.Errorf("DataAPIPath(%s) = %q, want an error", ep, got)
		}
	}
}
