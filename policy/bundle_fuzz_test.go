package policy

import (
	"errors"
	"testing"
)

// FuzzReadBundle feeds arbitrary archives to the bundle reader with
// verification on: it must never panic, must refuse with ErrBundle, and
// must accept nothing but content its key signed. The committed corpus
// holds bundles signed by fixedECSigner.
func FuzzReadBundle(f *testing.F) {
	s := fixedECSigner(f)
	c := s.config("fuzz.tar.gz")
	c.MaxBytes = 1 << 20
	accepted := map[string]bool{}
	for _, b := range [][]byte{
		signedTarball(f, s, bundleFiles("v1"), signOpts{}, nil),
		goodBundle(f, s, "v1"),
	} {
		src, err := readBundleBytes(b, c)
		if err != nil {
			f.Fatal(err)
		}
		accepted[src.Revision()] = true
		f.Add(b)
	}
	f.Add(goodBundle(f, bundleKey{}, "unsigned"))
	f.Add(tarGz(f, tarEntry{name: "/../x.rego", body: "package x\n"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := readBundleBytes(data, c)
		if err != nil {
			if !errors.Is(err, ErrBundle) {
				t.Fatalf("ReadBundle error %v is not ErrBundle", err)
			}
			return
		}
		if !accepted[src.Revision()] {
			t.Fatalf("accepted content the key never signed: %v", src.Files())
		}
	})
}
