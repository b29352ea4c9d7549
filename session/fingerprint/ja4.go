package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/crmgate/crmgate/scope"
)

// TLS ExtensionType values (IANA registry) that JA4 treats specially.
const (
	extServerName        uint16 = 0x0000 // RFC 6066 §3
	extALPN              uint16 = 0x0010 // RFC 7301 §3.1
	extPreSharedKey      uint16 = 0x0029 // RFC 8446 §4.2.11
	extEarlyData         uint16 = 0x002a // RFC 8446 §4.2.10
	extSupportedVersions uint16 = 0x002b // RFC 8446 §4.2.1
)

// ja4Len is the length of a JA4 fingerprint: a 10-character prefix, then
// two 12-character hashes, each after an underscore.
const ja4Len = 10 + 1 + 12 + 1 + 12

const hexDigits = "0123456789abcdef"

// JA4 returns the JA4 fingerprint of a ClientHello as the FoxIO JA4
// specification (github.com/FoxIO-LLC/ja4, technical_details/JA4.md)
// defines it, e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1", and false for a
// nil hello.
//
// GREASE values (RFC 8701 §2: 0x0a0a, 0x1a1a, … 0xfafa) are ignored in
// every list. The version is the highest value of supported_versions. A
// captured ClientHello does not keep the legacy version field: for a client
// that sends no supported_versions, crypto/tls lists the versions from TLS
// 1.0 up to the legacy version instead, so the highest of them is the
// legacy version for TLS 1.0 to 1.2 clients; an SSL 3.0 client shows as "00"
// where the specification says "s3" (crypto/tls refuses it anyway). The
// SNI flag is "d" when the server_name extension was sent, and the prefix
// is always "t": the gateway terminates TLS over TCP, never QUIC or DTLS.
func JA4(h *scope.ClientHello) (string, bool) {
	return ja4(h, false)
}

// StableJA4 is JA4 of the ClientHello as the client sends it on a full
// handshake: the pre_shared_key and early_data extensions, which a client
// adds only when it resumes a TLS session, are not counted or hashed. For a
// hello without them it equals JA4. Session binding uses it, because a
// browser resumes TLS sessions all the time and JA4 would report every
// resumption as a different client.
func StableJA4(h *scope.ClientHello) (string, bool) {
	return ja4(h, true)
}

func ja4(h *scope.ClientHello, stable bool) (string, bool) {
	if h == nil {
		return "", false
	}
	var (
		out     [ja4Len]byte
		scratch [64]uint16
		text    [512]byte
	)
	b := append(out[:0], 't')
	b = append(b, versionCode(h.SupportedVersions)...)
	if h.ServerName != "" || slices.Contains(h.Extensions, extServerName) {
		b = append(b, 'd')
	} else {
		b = append(b, 'i')
	}

	ciphers := appendNonGREASE(scratch[:0], h.CipherSuites)
	b = appendCount(b, len(ciphers))
	slices.Sort(ciphers)
	var cipherHash [12]byte
	hash12(&cipherHash, appendHexList(text[:0], ciphers), len(ciphers) == 0)

	// The cipher list is hashed; its scratch space is free again.
	exts := scratch[:0]
	n := 0
	for _, e := range h.Extensions {
		if isGREASE(e) || stable && (e == extPreSharedKey || e == extEarlyData) {
			continue
		}
		n++ // the count includes SNI and ALPN; the hash does not
		if e != extServerName && e != extALPN {
			exts = append(exts, e)
		}
	}
	b = appendCount(b, n)
	b = appendALPN(b, h.SupportedProtos)

	slices.Sort(exts)
	t := appendHexList(text[:0], exts)
	sep := byte('_') // no signature algorithms: no underscore either
	for _, s := range h.SignatureSchemes {
		if !isGREASE(s) {
			t = appendHex4(append(t, sep), s)
			sep = ','
		}
	}
	var extHash [12]byte
	hash12(&extHash, t, len(exts) == 0)

	b = append(b, '_')
	b = append(b, cipherHash[:]...)
	b = append(b, '_')
	b = append(b, extHash[:]...)
	return string(b), true
}

// isGREASE reports whether v is one of the sixteen GREASE values reserved
// for cipher suites, extensions, groups, signature algorithms and versions
// (RFC 8701 §2).
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// versionCode is the JA4 version of the highest non-GREASE version offered.
func versionCode(versions []uint16) string {
	var best uint16
	found := false
	for _, v := range versions {
		if !isGREASE(v) && (!found || v > best) {
			best, found = v, true
		}
	}
	if !found {
		return "00"
	}
	switch best {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0200, 0x0002: // the specification has listed SSL 2.0 both ways
		return "s2"
	case 0x0100:
		return "s1"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// appendALPN appends the first and last characters of the first ALPN
// protocol; "00" when there is none. When either is not an ASCII letter or
// digit, it appends the first and last hex digits of the protocol's bytes
// instead (so 0xab 0xcd gives "ad"), which also keeps the fingerprint free
// of separators.
func appendALPN(b []byte, protos []string) []byte {
	if len(protos) == 0 || protos[0] == "" {
		return append(b, '0', '0')
	}
	p := protos[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	return append(b, hexDigits[first>>4], hexDigits[last&0x0f])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func appendNonGREASE(dst, src []uint16) []uint16 {
	for _, v := range src {
		if !isGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// appendCount appends n as two digits, 99 at most.
func appendCount(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

// appendHexList appends vs as comma-separated four-digit lower-case hex.
func appendHexList(b []byte, vs []uint16) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendHex4(b, v)
	}
	return b
}

func appendHex4(b []byte, v uint16) []byte {
	return append(b, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
}

// hash12 writes the first 12 hex digits of SHA-256 of text, or twelve
// zeros when the list is empty (the specification's marker for "no
// values", rather than the hash of nothing).
func hash12(dst *[12]byte, text []byte, empty bool) {
	if empty {
		copy(dst[:], "000000000000")
		return
	}
	sum := sha256.Sum256(text)
	hex.Encode(dst[:], sum[:6])
}

// validJA4 reports whether s has the shape of a JA4 fingerprint, as a
// trusted proxy's header must: the protocol (t, q for QUIC, d for DTLS),
// the version, the SNI flag, two counts, two ALPN characters and two
// lower-case hex hashes.
func validJA4(s string) bool {
	if len(s) != ja4Len {
		return false
	}
	if s[0] != 't' && s[0] != 'q' && s[0] != 'd' {
		return false
	}
	if !isAlnum(s[1]) || !isAlnum(s[2]) || s[3] != 'd' && s[3] != 'i' {
		return false
	}
	for i := 4; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	if !isAlnum(s[8]) || !isAlnum(s[9]) || s[10] != '_' || s[23] != '_' {
		return false
	}
	for i := 11; i < ja4Len; i++ {
		if i == 23 {
			continue
		}
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
