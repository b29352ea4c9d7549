package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
)

// bundlePolicy answers with the reason the bundle's data holds.
const bundlePolicy = `package crmgate.authz

decision := {"allow": true, "reason": data.crmgate.reason}
`

const bundleTest = `package crmgate.authz_test

import data.crmgate.authz

test_allows if authz.decision.allow
`

// bundleFiles are the files of a bundle as opa build writes them.
func bundleFiles(reason string) map[string]string {
	return map[string]string{
		"authz.rego":      bundlePolicy,
		"authz_test.rego": bundleTest,
		"data.json":       `{"crmgate": {"reason": "` + reason + `"}}`,
		".manifest":       `{"revision": "rev-` + reason + `"}`,
	}
}

// goodBundle is a bundle of bundlePolicy deciding with reason, signed
// by s with OPA's writer and bundleKey.
func goodBundle(t testing.TB, s bundleKey, reason string) []byte {
	t.Helper()
	return opaBundle(t, s,
		map[string]string{"authz.rego": bundlePolicy, "authz_test.rego": bundleTest},
		map[string]any{"crmgate": map[string]any{"reason": reason}},
		"rev-"+reason)
}

func readBundleBytes(b []byte, c BundleConfig) (*Source, error) {
	return ReadBundle(bytes.NewReader(b), "bundle.tar.gz", c)
}

// A bundle signed as opa build signs it is read with every supported
// family of algorithm: its modules by path, its data as one root
// document, its manifest's revision.
func TestReadBundleSigned(t *testing.T) {
	for _, s := range []bundleKey{rsaSigner(t, "RS256"), rsaSigner(t, "PS256"), ecSigner(t), hmacSigner(t)} {
		t.Run(s.alg, func(t *testing.T) {
			c := s.config("")
			c.File = "bundle.tar.gz"
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			src, err := readBundleBytes(goodBundle(t, s, "v1"), c)
			if err != nil {
				t.Fatalf("ReadBundle = %v", err)
			}
			if diff := cmp.Diff(src.Files(), []string{"authz.rego", "authz_test.rego", "data.json"}); diff != "" {
				t.Errorf("Files() (-got +want):\n%s", diff)
			}
			if got := string(src.files["data.json"]); got != `{"crmgate":{"reason":"v1"}}` {
				t.Errorf("data.json = %s", got)
			}
			if src.BundleRevision() != "rev-v1" || len(src.Revision()) != 32 || src.Dir != "bundle.tar.gz" {
				t.Errorf("BundleRevision() = %q, Revision() = %q, Dir = %q", src.BundleRevision(), src.Revision(), src.Dir)
			}
			set, err := Compile(context.Background(), src, []string{DefaultEntrypoint})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if rep, err := set.Test(context.Background(), DefaultTestTimeout); err != nil || !rep.OK() || rep.Passed != 1 {
				t.Errorf("Test() = %v, %v; want the bundle's one test passing", rep, err)
			}
		})
	}
}

// The revision hashes content only: the same policies signed again under
// another manifest revision are the same set.
func TestReadBundleRevisionIsContent(t *testing.T) {
	s := ecSigner(t)
	c := s.config("bundle.tar.gz")
	one, err := readBundleBytes(goodBundle(t, s, "v1"), c)
	if err != nil {
		t.Fatal(err)
	}
	b := opaBundle(t, s,
		map[string]string{"authz.rego": bundlePolicy, "authz_test.rego": bundleTest},
		map[string]any{"crmgate": map[string]any{"reason": "v1"}}, "another")
	two, err := readBundleBytes(b, c)
	if err != nil {
		t.Fatal(err)
	}
	if one.Revision() != two.Revision() || two.BundleRevision() != "another" {
		t.Errorf("revisions %s %s, bundle revision %q", one.Revision(), two.Revision(), two.BundleRevision())
	}
}

// Every way of getting a bundle accepted that its bundleKey did not sign,
// and every malformed archive, is refused before anything is compiled.
func TestReadBundleRefuses(t *testing.T) {
	s := ecSigner(t)
	other := ecSigner(t)
	rs := rsaSigner(t, "RS256")
	fs := bundleFiles("v1")
	signed := func(edit func(map[string]string)) []byte { return signedTarball(t, s, fs, signOpts{}, edit) }

	tests := []struct {
		name   string
		bundle func() []byte
		cfg    func(*BundleConfig)
		detail string
	}{
		{"unsigned", func() []byte { return tarGz(t, tarFiles(fs)...) }, nil, "missing .signatures.json"},
		{"unsigned by OPA's writer", func() []byte { return goodBundle(t, bundleKey{}, "v1") }, nil, "missing .signatures.json"},
		{"signed by another key", func() []byte { return signedTarball(t, other, fs, signOpts{}, nil) }, nil, "failed to verify JWT signature"},
		{"a rego byte changed after signing", func() []byte {
			return signed(func(m map[string]string) { m["authz.rego"] = strings.Replace(m["authz.rego"], "true", "tru ", 1) })
		}, nil, "authz.rego: digest mismatch"},
		{"data changed after signing", func() []byte {
			return signed(func(m map[string]string) { m["data.json"] = `{"crmgate": {"reason": "forged"}}` })
		}, nil, "data.json: digest mismatch"},
		{"manifest changed after signing", func() []byte {
			return signed(func(m map[string]string) { m[".manifest"] = `{"revision": "forged"}` })
		}, nil, ".manifest: digest mismatch"},
		{"a policy added after signing", func() []byte {
			return signed(func(m map[string]string) { m["evil.rego"] = "package crmgate.evil\n\nx := 1\n" })
		}, nil, "evil.rego not included in bundle signature"},
		{"a data file added after signing", func() []byte {
			return signed(func(m map[string]string) { m["crmgate/data.json"] = `{"reason": "x"}` })
		}, nil, "crmgate/data.json not included in bundle signature"},
		{"a test removed after signing", func() []byte {
			return signed(func(m map[string]string) { delete(m, "authz_test.rego") })
		}, nil, "authz_test.rego] specified in bundle signatures but not found"},
		{"a kid that names another key", func() []byte { return signedTarball(t, s, fs, signOpts{kid: "other"}, nil) }, nil, "verification key corresponding to ID other not found"},
		{"configured key_id differs", func() []byte { return signed(nil) }, func(c *BundleConfig) { c.KeyID = "prod" }, "verification key corresponding to ID default not found"},
		{"a signature for another scope", func() []byte {
			return signedTarball(t, s, fs, signOpts{claims: `{"keyid": "default", "scope": "staging"}`}, nil)
		}, func(c *BundleConfig) { c.Scope = "production" }, "scope mismatch"},
		{"a scoped signature where none is expected", func() []byte {
			return signedTarball(t, s, fs, signOpts{claims: `{"keyid": "default", "scope": "staging"}`}, nil)
		}, nil, "scope mismatch"},
		// The configured algorithm verifies, whatever the JWT header
		// says: an HMAC signature keyed with the RSA public key (the
		// classic JWT algorithm confusion) does not verify.
		{"HS256 keyed with the RS256 public key", func() []byte {
			return signedTarball(t, bundleKey{alg: "HS256", priv: string(rs.pub)}, fs, signOpts{}, nil)
		}, func(c *BundleConfig) { c.PublicKey = rs.config("").PublicKey; c.Algorithm = "RS256" }, "failed to verify JWT signature"},
		{"two signatures", func() []byte {
			sig := signFiles(t, s, fs, signOpts{})
			two := strings.Replace(sig, `"]`, `","`+strings.TrimSuffix(strings.TrimPrefix(sig, `{"signatures":["`), `"]}`)+`"]`, 1)
			return tarGz(t, append(tarFiles(fs), tarEntry{name: "/.signatures.json", body: two})...)
		}, nil, "multiple JWTs"},
		{"a signature plugin", func() []byte {
			sig := strings.Replace(signFiles(t, s, fs, signOpts{}), `{`, `{"plugin": "none",`, 1)
			return tarGz(t, append(tarFiles(fs), tarEntry{name: "/.signatures.json", body: sig})...)
		}, nil, "no verifier exists under id none"},
		{"exclude_files exempting a policy", func() []byte {
			return signed(func(m map[string]string) { m["evil.rego"] = "package crmgate.evil\n\nx := 1\n" })
		}, func(c *BundleConfig) { c.ExcludeFiles = []string{"README.md", "*.rego"} }, `exclude_files[1] "*.rego" exempts authz.rego`},
		{"exclude_files exempting data", func() []byte { return signed(nil) },
			func(c *BundleConfig) { c.ExcludeFiles = []string{"data.*"} }, "exempts data.json"},
		{"a Wasm module", func() []byte {
			m := maps.Clone(fs)
			m["policy.wasm"] = "\x00asm\x01\x00\x00\x00"
			return signedTarball(t, s, m, signOpts{}, nil)
		}, nil, "Wasm or plan modules"},
		{"a delta bundle", func() []byte {
			return tarGz(t, tarEntry{name: "/patch.json", body: `{"data": [{"op": "upsert", "path": "/crmgate/reason", "value": "x"}]}`},
				tarEntry{name: "/.manifest", body: `{"revision": "d"}`})
		}, nil, "delta bundles do not support signature verification"},

		// The archive itself.
		{"not gzip", func() []byte { return []byte("<html>502 Bad Gateway</html>") }, nil, "not a gzip archive"},
		{"gzip but not tar", func() []byte { return gzipBytes(t, bytes.Repeat([]byte("garbage "), 200)) }, nil, "not a tar archive"},
		{"truncated", func() []byte { b := signed(nil); return b[:len(b)/2] }, nil, "unexpected EOF"},
		{"a path leaving the bundle", func() []byte {
			return signed(func(m map[string]string) { m["../escape.rego"] = "package crmgate.evil\n" })
		}, nil, `"/../escape.rego" leaves the bundle`},
		{"a path leaving the bundle midway", func() []byte {
			return tarGz(t, tarEntry{name: "crmgate/../../../etc/x.rego", body: "package x\n"})
		}, nil, "leaves the bundle"},
		{"a backslash", func() []byte { return tarGz(t, tarEntry{name: `..\x.rego`, body: "package x\n"}) }, nil, "is not allowed"},
		{"a symbolic link", func() []byte {
			return tarGz(t, append(tarFiles(fs), tarEntry{name: "/link.rego", body: "/etc/passwd", typ: tar.TypeSymlink})...)
		}, nil, "is not a file or folder"},
		{"a hard link", func() []byte {
			return tarGz(t, append(tarFiles(fs), tarEntry{name: "/hard.rego", body: "authz.rego", typ: tar.TypeLink})...)
		}, nil, "is not a file or folder"},
		{"a file twice", func() []byte {
			return tarGz(t, append(tarFiles(fs), tarEntry{name: "authz.rego", body: "package crmgate.authz\n"})...)
		}, nil, `"authz.rego" appears twice`},
		{"larger than max_bytes", func() []byte { return signed(nil) }, func(c *BundleConfig) { c.MaxBytes = 100 }, "larger than max_bytes (100)"},
		{"a gzip bomb", func() []byte {
			return tarGz(t, tarEntry{name: "/data.json", body: `{"x": "` + strings.Repeat("A", 4<<20) + `"}`})
		}, func(c *BundleConfig) { c.MaxBytes = 1 << 20 }, "decompresses to more than max_bytes (1048576)"},
		{"a header claiming a huge file", func() []byte { return hugeHeader(t) }, nil, "at most 16777216 are allowed per file"},
		{"sparse files, whose holes decompress from nothing", func() []byte { return sparseBomb(t, 150) }, nil, "is a sparse file"},
		{"too many files", func() []byte {
			es := make([]tarEntry, maxFiles+1)
			for i := range es {
				es[i] = tarEntry{name: "/f" + strconv.Itoa(i) + ".txt"}
			}
			return tarGz(t, es...)
		}, nil, "more than 10000 files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.config("bundle.tar.gz")
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			src, err := readBundleBytes(tt.bundle(), c)
			if err == nil {
				t.Fatalf("ReadBundle accepted it: %v", src.Files())
			}
			if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("ReadBundle = %v, want ErrBundle mentioning %q", err, tt.detail)
			}
		})
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	if _, err := gz.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugeHeader is a tarball whose one header claims a 1 GiB file and whose
// data never comes: OPA's loader would size a buffer by the claim.
func hugeHeader(t testing.TB) []byte {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: "/data.json", Mode: 0o644, Size: 1 << 30, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	return gzipBytes(t, hdr.Bytes()[:512])
}

// sparseBomb is a tarball of n PAX (GNU 1.0) sparse files of 16 MiB - 1
// bytes each that are all hole: a few kilobytes compressed, whose files
// Go's tar reader expands and OPA's loader would allocate in full before
// any signature is checked.
func sparseBomb(t testing.TB, n int) []byte {
	t.Helper()
	block := func(name string, typ byte, size int64) []byte {
		b := make([]byte, 512)
		copy(b[0:100], name)
		copy(b[100:108], "0000644\x00")
		copy(b[108:116], "0000000\x00")
		copy(b[116:124], "0000000\x00")
		copy(b[124:136], fmt.Sprintf("%011o\x00", size))
		copy(b[136:148], "00000000000\x00")
		b[156] = typ
		copy(b[257:263], "ustar\x00")
		copy(b[263:265], "00")
		copy(b[148:156], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	pad := func(b []byte) []byte { return append(b, make([]byte, (512-len(b)%512)%512)...) }
	record := func(k, v string) string {
		s := " " + k + "=" + v + "\n"
		for n := len(s); ; {
			r := strconv.Itoa(n) + s
			if len(r) == n {
				return r
			}
			n = len(r)
		}
	}
	const size = 16<<20 - 1
	var raw bytes.Buffer
	for i := range n {
		name := fmt.Sprintf("f%05d.txt", i)
		pax := record("GNU.sparse.major", "1") + record("GNU.sparse.minor", "0") +
			record("GNU.sparse.name", name) + record("GNU.sparse.realsize", strconv.Itoa(size))
		raw.Write(block("PaxHeaders/"+name, tar.TypeXHeader, int64(len(pax))))
		raw.Write(pad([]byte(pax)))
		m := pad([]byte("1\n" + strconv.Itoa(size) + "\n0\n"))
		raw.Write(block("GNUSparseFile.0/"+name, tar.TypeReg, int64(len(m))))
		raw.Write(m)
	}
	raw.Write(make([]byte, 1024))
	return gzipBytes(t, raw.Bytes())
}

// A signature that names no key, as opa build --claims-file writes one,
// is checked with key_id's key; one that names a key must name that one.
func TestReadBundleKeyID(t *testing.T) {
	s := ecSigner(t)
	fs := bundleFiles("v1")
	scoped := signOpts{noKid: true, claims: `{"scope": "production"}`}
	c := s.config("bundle.tar.gz")
	c.Scope = "production"
	if _, err := readBundleBytes(signedTarball(t, s, fs, scoped, nil), c); err != nil {
		t.Errorf("ReadBundle(no kid, scoped) = %v", err)
	}
	c.KeyID = "prod-2026"
	if _, err := readBundleBytes(signedTarball(t, s, fs, scoped, nil), c); err != nil {
		t.Errorf("ReadBundle(no kid, key_id prod-2026) = %v", err)
	}
	if _, err := readBundleBytes(signedTarball(t, ecSigner(t), fs, scoped, nil), c); err == nil || !strings.Contains(err.Error(), "failed to verify JWT signature") {
		t.Errorf("ReadBundle(no kid, another key) = %v, want a refusal", err)
	}
	if _, err := readBundleBytes(signedTarball(t, s, fs, signOpts{kid: "prod-2026", claims: `{"scope": "production"}`}, nil), c); err != nil {
		t.Errorf("ReadBundle(kid prod-2026) = %v", err)
	}
	if _, err := readBundleBytes(signedTarball(t, s, fs, signOpts{kid: "staging", claims: `{"scope": "production"}`}, nil), c); err == nil || !strings.Contains(err.Error(), "ID staging not found") {
		t.Errorf("ReadBundle(kid staging) = %v, want a refusal", err)
	}
}

// What exclude_files is for: a file added after signing that the
// gateway does not load.
func TestReadBundleExcludedFile(t *testing.T) {
	s := ecSigner(t)
	b := signedTarball(t, s, bundleFiles("v1"), signOpts{}, func(m map[string]string) { m["README.md"] = "built by CI" })
	c := s.config("bundle.tar.gz")
	if _, err := readBundleBytes(b, c); err == nil || !strings.Contains(err.Error(), "README.md not included in bundle signature") {
		t.Errorf("ReadBundle(unsigned README) = %v, want a refusal", err)
	}
	c.ExcludeFiles = []string{"README.md"}
	if _, err := readBundleBytes(b, c); err != nil {
		t.Errorf("ReadBundle(README excluded) = %v", err)
	}
	// OPA's reader takes any name ending in .manifest for the manifest:
	// an exclusion may not let an unsigned one in.
	b = signedTarball(t, s, bundleFiles("v1"), signOpts{}, func(m map[string]string) {
		delete(m, ".manifest")
		m["README.manifest"] = `{"revision": "forged"}`
	})
	c.ExcludeFiles = []string{"README*"}
	if src, err := readBundleBytes(b, c); err == nil || !strings.Contains(err.Error(), "exempts README.manifest") {
		t.Errorf("ReadBundle(unsigned README.manifest excluded) = %v, %v; want a refusal", src, err)
	}
}

// Data files are placed under data by their folder exactly as OPA places
// a bundle's data: what the set sees at data.x is what OPA would.
func TestReadBundleDataLayout(t *testing.T) {
	s := ecSigner(t)
	fs := map[string]string{
		"p/p.rego":           "package p\n\nv := data.x.y.a\n",
		"data.json":          `{"top": true, "x": {"n": 1.5}}`,
		"x/data.json":        `{"y": {"a": 1, "big": 12345678901234567890}}`,
		"x/z/data.yaml":      "b: [1, two]\nc: {d: null}\n",
		"x/y/data.yml":       "e: yes\n",
		"x/not-data.json":    `{"ignored": "only data.json and data.yaml are data in a bundle"}`,
		"deep/a/b/data.json": `["list"]`,
	}
	raw := signedTarball(t, s, fs, signOpts{}, nil)
	src, err := readBundleBytes(raw, s.config("bundle.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := Compile(context.Background(), src, []string{"data.p.v"})
	if err != nil {
		t.Fatal(err)
	}

	// OPA's own reading and evaluation of the same bundle.
	b, err := bundle.NewCustomReader(bundle.NewTarballLoader(bytes.NewReader(raw))).
		WithRegoVersion(ast.RegoV1).WithSkipBundleVerification(true).Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"data.x", "data.top", "data.deep", "data.x.y.a", "data.x.z.b"} {
		opa := evalData(t, rego.ParsedBundle("b", &b), rego.Query(q))
		ours := evalData(t, rego.Compiler(set.compiler), rego.Store(set.store), rego.Query(q))
		if diff := cmp.Diff(ours, opa); diff != "" {
			t.Errorf("%s (-ours +OPA's):\n%s", q, diff)
		}
	}
	want := map[string]any{
		"n": json.Number("1.5"),
		"y": map[string]any{"a": json.Number("1"), "big": json.Number("12345678901234567890"), "e": "yes"},
		"z": map[string]any{"b": []any{json.Number("1"), "two"}, "c": map[string]any{"d": nil}},
	}
	if diff := cmp.Diff(evalData(t, rego.Compiler(set.compiler), rego.Store(set.store), rego.Query("data.x")), any(want)); diff != "" {
		t.Errorf("data.x (-got +want):\n%s", diff)
	}
}

func evalData(t *testing.T, opts ...func(*rego.Rego)) any {
	t.Helper()
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		return nil
	}
	// Compare as JSON documents: numbers as OPA writes them.
	v := rs[0].Expressions[0].Value
	if err := util.RoundTrip(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
