package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/crmgate/crmgate/secret"
)

// bundleKey is a key pair that signs bundles the way opa build does.
type bundleKey struct {
	alg  string
	priv string // PEM private key, or the HMAC secret
	pub  []byte // PEM public key, or the HMAC secret
}

// config is a verified bundle configuration for s and the file.
func (s bundleKey) config(file string) BundleConfig {
	c := BundleConfig{File: file, PublicKey: secret.FromValue(s.pub), Algorithm: s.alg}
	c.Defaults()
	return c
}

func pemKeyPair(t testing.TB, alg string, priv any, pub any) bundleKey {
	t.Helper()
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return bundleKey{
		alg:  alg,
		priv: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		pub:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}),
	}
}

// rsaKeys are generated once: a 2048-bit key takes a noticeable time
// under the race detector.
var rsaKeys = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func rsaSigner(t testing.TB, alg string) bundleKey {
	t.Helper()
	k, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return pemKeyPair(t, alg, k, &k.PublicKey)
}

// ecSigner is a fresh P-256 key: a different one at every call.
func ecSigner(t testing.TB) bundleKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pemKeyPair(t, "ES256", k, &k.PublicKey)
}

// fixedECSigner is a P-256 key derived from a fixed scalar, so that the
// committed fuzz corpus holds bundles this key signed.
func fixedECSigner(t testing.TB) bundleKey {
	t.Helper()
	d := sha256.Sum256([]byte("crmgate FuzzReadBundle test key"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return pemKeyPair(t, "ES256", k, &k.PublicKey)
}

func hmacSigner(t testing.TB) bundleKey {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := hex.EncodeToString(b)
	return bundleKey{alg: "HS256", priv: s, pub: []byte(s)}
}

// opaBundle builds and signs a bundle with OPA's own writer and bundleKey,
// as `opa build --bundle --signing-key` does: modules by path, the data
// tree as /data.json, a manifest with revision (and roots, if given).
func opaBundle(t testing.TB, s bundleKey, modules map[string]string, data map[string]any, revision string, roots ...string) []byte {
	t.Helper()
	b := bundle.Bundle{Data: data, Manifest: bundle.Manifest{Revision: revision}}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	if len(roots) > 0 {
		b.Manifest.Roots = &roots
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		b.Modules = append(b.Modules, bundle.ModuleFile{
			URL:    "/" + name,
			Path:   "/" + name,
			Raw:    []byte(modules[name]),
			Parsed: ast.MustParseModuleWithOpts(modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1}),
		})
	}
	if s.alg != "" {
		if err := b.GenerateSignature(bundle.NewSigningConfig(s.priv, s.alg, ""), DefaultBundleKeyID, false); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signOpts are the choices of a signature made by signFiles.
type signOpts struct {
	kid    string // default DefaultBundleKeyID
	noKid  bool   // name no key, as opa build --claims-file does
	claims string // JSON claims (e.g. a scope) instead of the keyid claim
}

// signFiles returns the .signatures.json of files (path → content) as
// OPA's bundleKey writes it: one JWT listing every file's hash, data and
// manifest files hashed by their JSON structure.
func signFiles(t testing.TB, s bundleKey, files map[string]string, o signOpts) string {
	t.Helper()
	h, err := bundle.NewSignatureHasher(bundle.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var infos []bundle.FileInfo
	for _, name := range slices.Sorted(maps.Keys(files)) {
		var v any = []byte(files[name])
		if bundle.IsStructuredDoc(name) {
			if err := util.Unmarshal([]byte(files[name]), &v); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := h.HashFile(v)
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, bundle.NewFile(name, hex.EncodeToString(sum), "SHA-256"))
	}
	sc := bundle.NewSigningConfig(s.priv, s.alg, "")
	if o.claims != "" {
		p := filepath.Join(t.TempDir(), "claims.json")
		if err := os.WriteFile(p, []byte(o.claims), 0o600); err != nil {
			t.Fatal(err)
		}
		sc.ClaimsPath = p
	}
	kid := o.kid
	if kid == "" && !o.noKid {
		kid = DefaultBundleKeyID
	}
	token, err := bundle.GenerateSignedToken(infos, sc, kid)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(bundle.SignaturesConfig{Signatures: []string{token}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tarEntry is one member of a tarball built by tarGz.
type tarEntry struct {
	name string
	body string
	typ  byte // tar.TypeReg when zero
}

// tarFiles are tar entries of path → content, with opa build's leading slash.
func tarFiles(m map[string]string) []tarEntry {
	var es []tarEntry
	for _, name := range slices.Sorted(maps.Keys(m)) {
		es = append(es, tarEntry{name: "/" + name, body: m[name]})
	}
	return es
}

// signedTarball signs files and writes them with their signature; edit,
// if set, changes the files after signing (an attacker's move).
func signedTarball(t testing.TB, s bundleKey, fs map[string]string, o signOpts, edit func(map[string]string)) []byte {
	t.Helper()
	sig := signFiles(t, s, fs, o)
	fs = maps.Clone(fs)
	if edit != nil {
		edit(fs)
	}
	return tarGz(t, append(tarFiles(fs), tarEntry{name: "/.signatures.json", body: sig})...)
}

func tarGz(t testing.TB, es ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
			if h.Typeflag == tar.TypeSymlink {
				h.Linkname = e.body
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
