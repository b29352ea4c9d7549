package framing

import "encoding/binary"

// Field values and request targets make up most of a head, so they are
// checked eight bytes at a time: a word is passed whole when it has no
// control byte and no DEL, and only a word that has one is looked at byte
// by byte. The tests below are exact about whether a word has such a
// byte, though not about which.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasLess reports whether any byte of x is below n, for n <= 0x80.
func hasLess(x, n uint64) bool { return (x-ones*n)&^x&highs != 0 }

// hasByte reports whether any byte of x equals b.
func hasByte(x uint64, b byte) bool {
	y := x ^ ones*uint64(b)
	return (y-ones)&^y&highs != 0
}

// valueLen returns the length of the prefix of v made of field-vchar, SP
// and HTAB (RFC 9110 §5.5).
func valueLen(v []byte) int {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		if !hasLess(x, 0x20) && !hasByte(x, 0x7f) {
			continue
		}
		// HTAB is the one control allowed; anything else ends the prefix.
		for j := i; j < i+8; j++ {
			if classes[v[j]]&classValue == 0 {
				return j
			}
		}
	}
	for ; i < len(v); i++ {
		if classes[v[i]]&classValue == 0 {
			return i
		}
	}
	return len(v)
}

// targetLen returns the length of the prefix of s that may be part of a
// request-target: no whitespace, controls or DEL.
func targetLen(s []byte) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64(s[i:])
		if hasLess(x, 0x21) || hasByte(x, 0x7f) {
			break
		}
	}
	for ; i < len(s); i++ {
		if classes[s[i]]&classTarget == 0 {
			return i
		}
	}
	return len(s)
}
