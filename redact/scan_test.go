package redact

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// special8 must agree with the plain table on every byte in every position.
func TestSpecial8(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var b [8]byte
	check := func() {
		want := false
		for _, c := range b {
			if !plain[c] {
				want = true
			}
		}
		if got := special8(binary.LittleEndian.Uint64(b[:])); got != want {
			t.Fatalf("%q: %v", b, got)
		}
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			for k := range b {
				b[k] = 'a'
			}
			b[pos] = byte(c)
			check()
			for k := range b {
				b[k] = byte(0x20 + r.IntN(0x60))
			}
			b[pos] = byte(c)
			check()
		}
	}
	for range 300_000 {
		for k := range b {
			b[k] = byte(r.IntN(256))
		}
		check()
	}
}
