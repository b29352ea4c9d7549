package apikey

import (
	"crypto/rand"
	"encoding/base32"
	"hash/crc32"
	"log/slog"
)

// The key format: Prefix, the id, "_", the secret and a checksum,
//
//	crm_<id:12>_<secret:52><check:7>
//
// all in lower-case RFC 4648 base32 letters (a-z, 2-7), so a key is one
// "word" that survives double-click selection, URLs and shell quoting.
// The id (60 random bits) names the record and may be logged; the secret
// (256 random bits) never leaves the client and the gateway's memory. The
// check is the CRC-32 (IEEE) of everything before it, 32 bits in 7 base32
// digits: it catches every single-character typo and lets secret scanners
// and the gateway tell a real key from a look-alike without a lookup.
const (
	// Prefix starts every key. It is matched case-sensitively.
	Prefix = "crm_"
	// IDLen is the length of a key id.
	IDLen = 12
	// SecretLen is the length of a key's secret part (256 bits).
	SecretLen = 52
	// checkLen is the length of the checksum.
	checkLen = 7
	// KeyLen is the length of every key.
	KeyLen = len(Prefix) + IDLen + 1 + SecretLen + checkLen
	// MaxLen bounds what Parse and Extract look at: a longer value is
	// refused (ErrTooLong) before any other work.
	MaxLen = 128
)

const (
	alphabet   = "abcdefghijklmnopqrstuvwxyz234567"
	idStart    = len(Prefix)
	sepAt      = idStart + IDLen
	secretAt   = sepAt + 1
	checkStart = secretAt + SecretLen
)

var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// isAlpha reports whether c is in the key alphabet.
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }

// Key is a freshly generated API key. Its plaintext is shown to its owner
// once (Plaintext) and never stored: String, GoString and LogValue print
// only the id. The zero Key is not a key.
type Key struct {
	id, secret string
}

// Generate returns a new key with a random id and secret from crypto/rand.
func Generate() (Key, error) {
	var b [8 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, err
	}
	// 8 bytes encode to 13 characters; the first 12 carry 60 random bits.
	id := encoding.EncodeToString(b[:8])[:IDLen]
	return Key{id: id, secret: encoding.EncodeToString(b[8:])}, nil
}

// ID returns the key id, which is not secret.
func (k Key) ID() string { return k.id }

// Secret returns the secret part, the input of the stored hash.
func (k Key) Secret() string { return k.secret }

// Plaintext returns the whole key as the client presents it.
func (k Key) Plaintext() string {
	if k.id == "" {
		return ""
	}
	body := Prefix + k.id + "_" + k.secret
	return body + checksum(body)
}

// String returns the key with its secret redacted.
func (k Key) String() string { return Prefix + k.id + "_[redacted]" }

// GoString is String, so that %#v does not print the secret either.
func (k Key) GoString() string { return k.String() }

// LogValue logs the key id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// checksum is the 7-character check of body: CRC-32 (IEEE), 32 bits
// big-endian in 5-bit digits, the first digit carrying the top 2 bits.
func checksum(body string) string {
	var out [checkLen]byte
	putChecksum(&out, crc32.ChecksumIEEE([]byte(body)))
	return string(out[:])
}

func putChecksum(out *[checkLen]byte, c uint32) {
	for i := range checkLen {
		out[i] = alphabet[(c>>(5*(checkLen-1-i)))&31]
	}
}

// Parse checks that s is exactly a key and returns its id and secret
// (substrings of s). It refuses a value longer than MaxLen before looking
// at it, and trims and normalises nothing: a key with a trailing space or
// newline, a different case or a different prefix is malformed, and how to
// answer is the caller's decision. Errors wrap ErrMalformed (ErrTooLong and
// ErrChecksum in particular). It does no I/O and is safe on any input.
func Parse(s string) (id, secret string, err error) {
	if len(s) > MaxLen {
		return "", "", ErrTooLong
	}
	if len(s) != KeyLen || s[:idStart] != Prefix || s[sepAt] != '_' {
		return "", "", ErrMalformed
	}
	for i := idStart; i < len(s); i++ {
		if i != sepAt && !isAlpha(s[i]) {
			return "", "", ErrMalformed
		}
	}
	var want [checkLen]byte
	putChecksum(&want, crc32.ChecksumIEEE([]byte(s[:checkStart])))
	if string(want[:]) != s[checkStart:] {
		return "", "", ErrChecksum
	}
	return s[idStart:sepAt], s[secretAt:checkStart], nil
}

// ValidID reports whether id has the form of a key id.
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := range len(id) {
		if !isAlpha(id[i]) {
			return false
		}
	}
	return true
}
