package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"testing"
)

// FuzzParseLine: the verifier's line parser never panics, and accepts only
// the canonical form: a line it accepts starts with the prefix rebuilt
// from what it read, and a checkpoint it accepts is rebuilt byte for byte.
// Seeds are in testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	key, _ := testKey()
	var prev [32]byte
	f.Add(appendCheckpoint(nil, 7, &prev, 1767366245000, key, KeyID(key.Public().(ed25519.PublicKey))))
	f.Add([]byte(`{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","time":1,"class_uid":4002}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		p, err := parseLine(line)
		if err != nil {
			return
		}
		prefix := appendLinePrefix(nil, p.seq, &p.prev)
		if !bytes.HasPrefix(line, prefix) {
			t.Fatalf("parseLine accepted %q, whose prefix is not %q", line, prefix)
		}
		if p.isCheckpoint {
			b := append(prefix, checkpointPrefix...)
			b = strconv.AppendInt(b, p.timeMS, 10)
			b = append(b, keyIDKey...)
			b = append(b, p.keyID...)
			b = append(b, sigKey...)
			b = base64.StdEncoding.AppendEncode(b, p.sig)
			b = append(b, checkpointSuffix...)
			if !bytes.Equal(b, line) {
				t.Fatalf("parseLine accepted checkpoint %q, rebuilt as %q", line, b)
			}
		}
	})
}
