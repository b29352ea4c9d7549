package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
)

// The chain's canonical form (docs/audit.md, "Hash chain"):
//
//	event line:      {"seq":N,"prev":"<hex>",<the event's fields>}
//	checkpoint line: {"seq":N,"prev":"<hex>","checkpoint":{"time":T,"key_id":"<hex>","sig":"<base64>"}}
//
// N counts lines from 1 across all segments, without leading zeros; prev
// is the lowercase hex SHA-256 of the previous line's exact bytes (without
// its newline), 64 zeros for the first line ever written. A line's hash is
// SHA-256 of its exact bytes. A checkpoint's sig is the Ed25519 signature
// (RFC 8032) of checkpointMessage(N, prev, T, key_id): it signs the chain
// head, the hash of the line before it, which through the chain covers
// every earlier line.

const (
	linePrefix       = `{"seq":`
	prevKey          = `,"prev":"`
	checkpointPrefix = `"checkpoint":{"time":`
	keyIDKey         = `,"key_id":"`
	sigKey           = `","sig":"`
	checkpointSuffix = `"}}`

	hashHexLen  = 2 * sha256.Size
	keyIDLen    = 16 // hex of the first 8 bytes of SHA-256(public key)
	sigB64Len   = 88 // standard base64 of 64 bytes
	maxSeqDigit = 20
)

// genesis is the prev of the first line ever written.
var genesis [sha256.Size]byte

// checkpointMessage is what a checkpoint signs.
func checkpointMessage(seq uint64, prevHex string, timeMS int64, keyID string) []byte {
	return fmt.Appendf(nil, "crmgate-audit-checkpoint/v1\nseq=%d\nprev=%s\ntime=%d\nkey_id=%s\n", seq, prevHex, timeMS, keyID)
}

// KeyID is the key id checkpoints carry for pub: the hex of the first 8
// bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// appendLinePrefix appends {"seq":N,"prev":"<hex>",.
func appendLinePrefix(b []byte, seq uint64, prev *[sha256.Size]byte) []byte {
	b = append(b, linePrefix...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, prevKey...)
	b = hex.AppendEncode(b, prev[:])
	return append(b, '"', ',')
}

// appendCheckpoint appends a signed checkpoint line (without newline).
func appendCheckpoint(b []byte, seq uint64, prev *[sha256.Size]byte, timeMS int64, key ed25519.PrivateKey, keyID string) []byte {
	prevHex := hex.EncodeToString(prev[:])
	sig := ed25519.Sign(key, checkpointMessage(seq, prevHex, timeMS, keyID))
	b = appendLinePrefix(b, seq, prev)
	b = append(b, checkpointPrefix...)
	b = strconv.AppendInt(b, timeMS, 10)
	b = append(b, keyIDKey...)
	b = append(b, keyID...)
	b = append(b, sigKey...)
	b = base64.StdEncoding.AppendEncode(b, sig)
	return append(b, checkpointSuffix...)
}

// parsedLine is what the verifier reads from one line.
type parsedLine struct {
	seq  uint64
	prev [sha256.Size]byte
	// checkpoint fields; isCheckpoint false for event lines.
	isCheckpoint bool
	timeMS       int64
	keyID        string
	sig          []byte
}

// errMalformed marks a line that is not in the canonical form.
var errMalformed = errors.New("not a chain line")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parseLine parses one line (without its newline) strictly: anything but
// the canonical form is an error, so that two different byte strings never
// verify as the same line.
func parseLine(line []byte) (parsedLine, error) {
	var p parsedLine
	rest, ok := bytes.CutPrefix(line, []byte(linePrefix))
	if !ok {
		return p, malformed(`does not start with {"seq":`)
	}
	seq, rest, err := parseUint(rest)
	if err != nil {
		return p, malformed("seq: %v", err)
	}
	if seq == 0 {
		return p, malformed("seq is 0; lines count from 1")
	}
	p.seq = seq
	if rest, ok = bytes.CutPrefix(rest, []byte(prevKey)); !ok {
		return p, malformed(`no "prev" after seq`)
	}
	if len(rest) < hashHexLen+2 || !isLowerHex(rest[:hashHexLen]) || rest[hashHexLen] != '"' || rest[hashHexLen+1] != ',' {
		return p, malformed("prev is not 64 lowercase hex digits")
	}
	hex.Decode(p.prev[:], rest[:hashHexLen])
	rest = rest[hashHexLen+2:]

	if cp, ok := bytes.CutPrefix(rest, []byte(checkpointPrefix)); ok {
		p.isCheckpoint = true
		t, cp, err := parseUint(cp)
		if err != nil || t > 1<<62 {
			return p, malformed("checkpoint time: %v", err)
		}
		p.timeMS = int64(t)
		if cp, ok = bytes.CutPrefix(cp, []byte(keyIDKey)); !ok || len(cp) < keyIDLen || !isLowerHex(cp[:keyIDLen]) {
			return p, malformed("checkpoint key_id is not 16 lowercase hex digits")
		}
		p.keyID = string(cp[:keyIDLen])
		if cp, ok = bytes.CutPrefix(cp[keyIDLen:], []byte(sigKey)); !ok || len(cp) != sigB64Len+len(checkpointSuffix) || string(cp[sigB64Len:]) != checkpointSuffix {
			return p, malformed("checkpoint sig is not 88 base64 characters closing the line")
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(string(cp[:sigB64Len]))
		if err != nil || len(sig) != ed25519.SignatureSize {
			return p, malformed("checkpoint sig is not base64 of 64 bytes")
		}
		p.sig = sig
		return p, nil
	}
	// An event: the rest of a JSON object whose first member follows.
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '}' {
		return p, malformed("the event fields do not follow prev")
	}
	if bytes.IndexByte(line, '\n') >= 0 || !json.Valid(line) {
		return p, malformed("not a JSON object")
	}
	return p, nil
}

// parseUint reads a decimal number without leading zeros.
func parseUint(b []byte) (uint64, []byte, error) {
	n := 0
	for n < len(b) && n <= maxSeqDigit && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	switch {
	case n == 0:
		return 0, b, errors.New("no digits")
	case n > 1 && b[0] == '0':
		return 0, b, errors.New("leading zero")
	}
	v, err := strconv.ParseUint(string(b[:n]), 10, 64)
	if err != nil {
		return 0, b, errors.New("out of range")
	}
	return v, b[n:], nil
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParsePrivateKey reads an Ed25519 signing key: a PEM "PRIVATE KEY"
// block (PKCS#8, as openssl genpkey -algorithm ed25519 writes), or the
// 32-byte seed (RFC 8032 §5.1.5) as raw bytes, 64 hex digits or base64.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %q, want PRIVATE KEY (PKCS#8)", blk.Type)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key, want Ed25519", k)
		}
		return ek, nil
	}
	seed, err := decodeKey(bytes.TrimSpace(b), ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#8 PEM key nor a 32-byte seed (raw, hex or base64): %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads an Ed25519 public key: a PEM "PUBLIC KEY" block
// (PKIX, as openssl pkey -pubout writes), or the 32 bytes raw, as 64 hex
// digits or base64.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block %q, want PUBLIC KEY", blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T key, want Ed25519", k)
		}
		return ek, nil
	}
	raw, err := decodeKey(bytes.TrimSpace(b), ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("not a PKIX PEM key nor 32 bytes (raw, hex or base64): %w", err)
	}
	return ed25519.PublicKey(raw), nil
}

// MarshalPublicKey returns the PEM "PUBLIC KEY" block of pub, what
// `crmgate audit verify` takes.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

func decodeKey(b []byte, size int) ([]byte, error) {
	switch {
	case len(b) == size:
		return append([]byte(nil), b...), nil
	case len(b) == 2*size && isHex(b):
		out := make([]byte, size)
		_, err := hex.Decode(out, b)
		return out, err
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if out, err := enc.DecodeString(string(b)); err == nil && len(out) == size {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%d bytes", len(b))
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
