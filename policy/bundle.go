package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// ErrBundle marks a bundle that ReadBundle refused: not a bundle, too
// large, malformed, or not signed as the configuration requires.
var ErrBundle = errors.New("policy bundle refused")

// bundleDataFile is where a bundle's data tree goes in its Source: one
// data file at the root, which the loader places at data itself.
const bundleDataFile = "data.json"

// BundleRevision is the revision stated by the manifest of the bundle the
// source was read from; empty for a folder or a manifest without one. It
// is not part of Revision, which hashes the policies and data only: a
// bundle rebuilt with the same content under a new manifest revision is
// the same set.
func (s *Source) BundleRevision() string { return s.bundleRevision }

// ReadBundle reads an OPA bundle (the .tar.gz that opa build writes) of at
// most c.MaxBytes, verifies its signature with c's key unless
// c.InsecureSkipVerify, and returns its policies and data as a Source
// whose Dir is location: each module under its path in the bundle, the
// data tree as one data.json at the root, the manifest's revision as
// BundleRevision. c must have passed Defaults and Validate, its key
// resolved. Errors wrap ErrBundle.
//
// Everything but the archive's outer checks is OPA's own bundle reader:
// the file hashes and the JWT of .signatures.json, the key id and scope,
// the manifest's roots, the data layout. Delta bundles, Wasm and plan
// modules are refused: the gateway evaluates Rego only.
func ReadBundle(r io.Reader, location string, c BundleConfig) (*Source, error) {
	raw, err := io.ReadAll(io.LimitReader(r, c.MaxBytes+1))
	if err != nil {
		return nil, bundleErr(location, err)
	}
	if int64(len(raw)) > c.MaxBytes {
		return nil, bundleErr(location, fmt.Errorf("larger than max_bytes (%d)", c.MaxBytes))
	}
	return readBundle(raw, location, c)
}

func bundleErr(location string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrBundle, location, err)
}

func readBundle(raw []byte, location string, c BundleConfig) (*Source, error) {
	if !c.InsecureSkipVerify && c.PublicKey.Value() == nil {
		return nil, bundleErr(location, errors.New("no public_key to verify the signature with"))
	}
	// OPA's tarball loader bounds each file but not their number or sum,
	// and takes entry names as they come: the archive is checked first,
	// and OPA's reader then reads the very same bytes.
	names, sigs, err := scanTarball(raw, c.MaxBytes)
	if err != nil {
		return nil, bundleErr(location, err)
	}
	if err := checkExclusions(names, c.ExcludeFiles); err != nil {
		return nil, bundleErr(location, err)
	}
	loader := bundle.NewTarballLoader(bytes.NewReader(raw)).WithSizeLimitBytes(maxFileBytes)
	rd := bundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithCapabilities(capabilities()).
		WithSizeLimitBytes(maxFileBytes).
		WithLazyLoadingMode(false)
	if c.InsecureSkipVerify {
		rd = rd.WithSkipBundleVerification(true)
	} else {
		// The key is registered under key_id: a signature that names
		// its key must name that one. One that names none (opa build
		// --claims-file writes no kid unless the claims hold a keyid)
		// is checked with it, as OPA does with a configured keyid.
		keys := map[string]*bundle.KeyConfig{c.KeyID: {
			Key:       string(c.PublicKey.Value()),
			Algorithm: c.Algorithm,
			Scope:     c.Scope,
		}}
		forced := ""
		if !signatureNamesKey(sigs) {
			forced = c.KeyID
		}
		rd = rd.WithBundleVerificationConfig(bundle.NewVerificationConfig(keys, forced, c.Scope, c.ExcludeFiles))
	}
	b, err := rd.Read()
	if err != nil {
		return nil, bundleErr(location, err)
	}
	src, err := bundleSource(&b, location)
	if err != nil {
		return nil, bundleErr(location, err)
	}
	return src, nil
}

// bundleSource converts a bundle OPA has read and verified into a Source.
func bundleSource(b *bundle.Bundle, location string) (*Source, error) {
	switch {
	case b.Type() != bundle.SnapshotBundleType:
		return nil, fmt.Errorf("a %s bundle; only snapshot bundles are supported", b.Type())
	case len(b.WasmModules) > 0 || len(b.Wasm) > 0 || len(b.PlanModules) > 0:
		return nil, errors.New("holds Wasm or plan modules, which the gateway does not evaluate; build the bundle from Rego only")
	}
	files := make(map[string][]byte, len(b.Modules)+1)
	for _, m := range b.Modules {
		name := strings.TrimPrefix(m.Path, "/")
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("%s appears twice", name)
		}
		files[name] = m.Raw
	}
	if _, clash := files[bundleDataFile]; clash {
		return nil, fmt.Errorf("a module is named %s", bundleDataFile)
	}
	if len(b.Data) > 0 {
		// OPA has merged every data.json and data.yaml by its folder;
		// the tree goes back as one document at the root, which the
		// loader places at data as it is.
		data, err := json.Marshal(b.Data)
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		files[bundleDataFile] = data
	}
	src, err := NewSource(location, files)
	if err != nil {
		return nil, err
	}
	src.bundleRevision = b.Manifest.Revision
	return src, nil
}

// signatureNamesKey reports whether the signature of a bundle names its
// key, by the JWT's kid header or its older keyid claim. Anything it
// cannot read counts as naming one: OPA's verifier then refuses it.
func signatureNamesKey(sigs []byte) bool {
	var sc bundle.SignaturesConfig
	if sigs == nil || json.Unmarshal(sigs, &sc) != nil || len(sc.Signatures) != 1 {
		return true
	}
	parts := strings.Split(sc.Signatures[0], ".")
	if len(parts) != 3 {
		return true
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	var claims struct {
		KeyID string `json:"keyid"`
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(h, &hdr) != nil {
		return true
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(p, &claims) != nil {
		return true
	}
	return hdr.Kid != "" || claims.KeyID != ""
}

// scanTarball checks the archive before OPA reads it: gzip and tar that
// decompress to at most maxBytes, at most maxFiles files of at most
// maxFileBytes each, only files and folders (no links or devices), names
// that stay inside the bundle, each once. It returns the files' names as
// OPA's reader matches them against exclusions (relative to the root),
// and the content of the signatures file, nil if there is none.
func scanTarball(raw []byte, maxBytes int64) (names []string, sigs []byte, err error) {
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("not a gzip archive: %w", err)
	}
	defer gz.Close()
	lr := &io.LimitedReader{R: gz, N: maxBytes + 1}
	tooBig := func() error { return fmt.Errorf("decompresses to more than max_bytes (%d)", maxBytes) }
	tr := tar.NewReader(lr)
	seen := map[string]bool{}
	// declared is the sum of the entries' stated sizes: OPA's reader
	// allocates what an entry states, so the sum is bounded as the
	// decompressed stream is.
	var declared int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if lr.N <= 0 {
				return nil, nil, tooBig()
			}
			return nil, nil, fmt.Errorf("not a tar archive: %w", err)
		}
		if err := checkEntryName(h.Name); err != nil {
			return nil, nil, err
		}
		// A sparse entry states a size its archive bytes do not hold
		// (its holes read as zeros): a bomb that max_bytes would not see.
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return nil, nil, fmt.Errorf("%q is a sparse file; a bundle holds only plain files", h.Name)
			}
		}
		switch h.Typeflag {
		case tar.TypeReg:
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		default:
			return nil, nil, fmt.Errorf("%q is not a file or folder (tar type %q); a bundle holds only files", h.Name, h.Typeflag)
		}
		name := strings.TrimPrefix(withSlash(h.Name), "/")
		clean := path.Clean("/" + h.Name)
		switch {
		case seen[clean]:
			return nil, nil, fmt.Errorf("%q appears twice", h.Name)
		case len(names) >= maxFiles:
			return nil, nil, fmt.Errorf("more than %d files", maxFiles)
		case h.Size > maxFileBytes:
			return nil, nil, fmt.Errorf("%q: %d bytes, at most %d are allowed per file", h.Name, h.Size, maxFileBytes)
		case h.Size < 0 || declared+h.Size > maxBytes:
			return nil, nil, tooBig()
		}
		declared += h.Size
		seen[clean] = true
		names = append(names, name)
		var dst io.Writer = io.Discard
		var buf bytes.Buffer
		if sigs == nil && bundle.IsSignaturesFile(name) {
			dst = &buf
		}
		if _, err := io.Copy(dst, tr); err != nil {
			if lr.N <= 0 {
				return nil, nil, tooBig()
			}
			return nil, nil, fmt.Errorf("%q: %w", h.Name, err)
		}
		if dst == &buf {
			sigs = buf.Bytes()
		}
	}
	if lr.N <= 0 {
		return nil, nil, tooBig()
	}
	return names, sigs, nil
}

// checkEntryName refuses names that leave the bundle (a .. element),
// that a Windows tool would read as another path (a backslash), or that
// hold NUL. A leading slash is how opa build writes names.
func checkEntryName(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") {
		return fmt.Errorf("entry name %q is not allowed", name)
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return fmt.Errorf("entry name %q leaves the bundle", name)
		}
	}
	return nil
}

// withSlash is the path OPA's tarball loader gives an entry.
func withSlash(name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return "/" + name
}

// checkExclusions refuses a bundle in which an exclude_files pattern
// exempts a file that the reader loads (a policy, data, the manifest):
// exclusion is for files added after signing that nothing reads, and an
// exempt policy or data file would be trusted unsigned.
func checkExclusions(names, patterns []string) error {
	for _, name := range names {
		if !isBundleContent(name) {
			continue
		}
		for i, p := range patterns {
			if ok, _ := path.Match(p, name); ok {
				return fmt.Errorf("exclude_files[%d] %q exempts %s from verification; only files the gateway does not load may be excluded", i, p, name)
			}
		}
	}
	return nil
}

// isBundleContent reports whether OPA's bundle reader loads a file of
// that name.
func isBundleContent(name string) bool {
	// OPA's reader takes any name ending in .manifest (or .manifest.pb)
	// for the manifest.
	if strings.HasSuffix(name, bundle.RegoExt) || strings.HasSuffix(name, bundle.ManifestExt) || strings.HasSuffix(name, bundle.ManifestProtoExt) {
		return true
	}
	switch path.Base(name) {
	case "data.json", "data.yaml", "data.yml", bundle.ManifestExt, bundle.ManifestProtoExt,
		"patch.json", bundle.WasmFile, bundle.PlanFile, bundle.PlanProtoFile:
		return true
	}
	return false
}
