package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Limits of a policy folder, so that a stray file cannot exhaust memory.
const (
	maxFiles     = 10_000
	maxFileBytes = 16 << 20
	maxSetBytes  = 64 << 20
)

// Source is the content of a policy folder read at one moment: what a Set
// is compiled from, and what its revision hashes. It is immutable.
type Source struct {
	// Dir is the folder the files were read from; for a bundle, its file
	// or the host and path of its URL.
	Dir string
	// files maps slash-separated paths relative to Dir to their content.
	files map[string][]byte
	// names are the keys of files, sorted.
	names    []string
	revision string
	// bundleRevision is the revision the manifest of a bundle states
	// (see BundleRevision).
	bundleRevision string
}

// IsPolicyFile reports whether a file of a policy folder is part of the
// set: a .rego, .json, .yaml or .yml file whose name does not start with a
// dot (editors' swap files and Kubernetes' ..data links are skipped).
func IsPolicyFile(name string) bool {
	base := path.Base(filepath.ToSlash(name))
	if strings.HasPrefix(base, ".") {
		return false
	}
	switch path.Ext(base) {
	case ".rego", ".json", ".yaml", ".yml":
		return true
	}
	return false
}

// isTestFile reports whether a policy file holds tests, which are run
// before a set takes effect and never enforced.
func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// ReadSource reads every policy file below dir (see IsPolicyFile). Hidden
// folders and symbolic links to folders are not entered; symbolic links to
// files are followed, as Kubernetes ConfigMap volumes need.
func ReadSource(dir string) (*Source, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("policy folder: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("policy folder %s is not a folder", dir)
	}
	// The folder itself may be a symbolic link (a mounted volume); walk
	// what it points to.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("policy folder: %w", err)
	}
	src := &Source{Dir: dir, files: map[string][]byte{}}
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !IsPolicyFile(d.Name()) {
			return nil
		}
		fi, err := os.Stat(p) // follows a symbolic link
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if fi.Size() > maxFileBytes {
			return fmt.Errorf("%s: %d bytes, at most %d are allowed", p, fi.Size(), maxFileBytes)
		}
		if len(src.files) >= maxFiles {
			return fmt.Errorf("more than %d policy files", maxFiles)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > maxSetBytes {
			return fmt.Errorf("policy files exceed %d bytes together", maxSetBytes)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		src.files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy folder %s: %w", dir, err)
	}
	src.seal()
	return src, nil
}

// NewSource makes a Source from file contents by relative slash-separated
// path, for sets that do not come from a folder (tests, bundles).
func NewSource(dir string, files map[string][]byte) (*Source, error) {
	src := &Source{Dir: dir, files: make(map[string][]byte, len(files))}
	for name, b := range files {
		clean := path.Clean(name)
		if !fs.ValidPath(clean) || clean == "." || !IsPolicyFile(clean) {
			return nil, fmt.Errorf("policy source: %q is not a relative policy file path", name)
		}
		src.files[clean] = slices.Clone(b)
	}
	src.seal()
	return src, nil
}

// seal sorts the names and computes the revision: a SHA-256 over every
// file's path and content, so that any change to the set, tests included,
// is a new revision and an unchanged folder is recognised.
func (s *Source) seal() {
	s.names = make([]string, 0, len(s.files))
	for name := range s.files {
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	h := sha256.New()
	var n [8]byte
	for _, name := range s.names {
		b := s.files[name]
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	s.revision = hex.EncodeToString(h.Sum(nil)[:16])
}

// Revision is the content hash of the source: 32 hex digits.
func (s *Source) Revision() string { return s.revision }

// Files lists the source's files, relative to Dir, sorted.
func (s *Source) Files() []string { return slices.Clone(s.names) }

// errNoPolicy is returned for a folder without any .rego file: a set that
// decides nothing is a configuration mistake, not an empty policy.
var errNoPolicy = errors.New("no .rego policy file")
