package redact

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"unicode/utf8"
)

// hashPrefix starts every hashed value, so that a reader of the output
// tells a pseudonym from data.
const hashPrefix = "hmac:"

// hashBytes is how much of the HMAC a hashed value shows: 128 bits keep
// collisions out of reach for any CRM's number of distinct values.
const hashBytes = 16

// replace writes the replacement of rule ri for the value just ended. A
// held string or a hashed value's text is in m.tok; str says the value
// was a string.
func (m *machine) replace(ri int32, sink uint8, str bool) {
	r := m.p.rules[ri]
	m.stats.Redacted[ri]++
	switch r.action {
	case actNull:
		m.emit(sink, []byte("null"))
	case actMask:
		if str && r.keep > 0 {
			m.emitMaskKeep(sink, r.keep)
			return
		}
		m.emit(sink, m.p.maskJSON)
	case actHash:
		data := m.tok
		if str {
			data = m.unquoted(data)
		}
		if m.h == nil {
			m.h = hmac.New(sha256.New, m.p.opts.HashKey)
		}
		m.h.Reset()
		m.h.Write(data)
		sum := m.h.Sum(m.sum[:0])
		var buf [2 + len(hashPrefix) + 22]byte
		b := append(buf[:0], '"')
		b = append(b, hashPrefix...)
		b = base64.RawURLEncoding.AppendEncode(b, sum[:hashBytes])
		m.emit(sink, append(b, '"'))
	}
}

// unquoted returns the decoded value of the JSON string raw (quotes
// included).
func (m *machine) unquoted(raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	m.scratch = appendUnquote(m.scratch[:0], s)
	return m.scratch
}

// emitMaskKeep writes the mask token followed by the last keep runes of
// the held string, or the token alone when the string has no more than
// keep runes: showing "the last 4" of a 4-character value shows it all.
func (m *machine) emitMaskKeep(sink uint8, keep int) {
	s := m.unquoted(m.tok)
	if utf8.RuneCount(s) <= keep {
		m.emit(sink, m.p.maskJSON)
		return
	}
	j := len(s)
	for range keep {
		_, size := utf8.DecodeLastRune(s[:j])
		j -= size
	}
	tail := s[j:]
	// The token's JSON text without its closing quote, then the tail.
	m.emit(sink, m.p.maskJSON[:len(m.p.maskJSON)-1])
	switch sink {
	case sinkOut:
		m.out = appendEscaped(m.out, tail)
	case sinkTok:
		m.tok = appendEscaped(m.tok, tail)
	}
	m.emitByte(sink, '"')
}
