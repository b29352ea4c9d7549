package certs

import "crypto/tls"

// cipherSuites are the TLS 1.2 suites offered: ECDHE only, for forward
// secrecy, and AEAD only (AES-GCM, ChaCha20-Poly1305), so no CBC suite with
// its padding-oracle history (Lucky13) and no static-RSA key exchange (ROBOT)
// is left. TLS 1.3 suites are not configurable in Go and are all AEAD.
// This is the "intermediate" profile of Mozilla's server-side TLS
// guidelines.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// curves are the key exchanges offered: the hybrid post-quantum
// X25519MLKEM768 (TLS 1.3 only) first, then X25519 and P-256 for clients
// without it. Setting the list explicitly pins it: Go's GODEBUG switches
// for the default key exchanges no longer apply.
var curves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}

// baseTLSConfig is the server configuration every source shares. TLS 1.3
// is preferred because Go always negotiates the highest version both sides
// support; TLS 1.2 remains for older clients, TLS 1.0 and 1.1 are refused
// (RFC 8996).
func baseTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     append([]uint16(nil), cipherSuites...),
		CurvePreferences: append([]tls.CurveID(nil), curves...),
		NextProtos:       []string{"h2", "http/1.1"},
	}
}
