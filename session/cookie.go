package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// IDLen is the number of random bytes in a session id: 256 bits, far past
// guessing (OWASP Session Management: at least 64 bits of entropy).
const IDLen = 32

// ID is a session id: IDLen random bytes and the id of the ring key that
// issued it (which verifies its cookie and derives its storage key). The
// zero ID is "no session". Its String and LogValue never show the bytes.
type ID struct {
	kid uint32
	raw [IDLen]byte
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// String hides the id, so that printing it by mistake leaks nothing.
func (id ID) String() string { return "session.ID(redacted)" }

// LogValue hides the id from slog.
func (id ID) LogValue() slog.Value { return slog.StringValue("redacted") }

func newID(kid uint32) ID {
	id := ID{kid: kid}
	rand.Read(id.raw[:])
	return id
}

// Cookie encoding: base64url (RFC 4648 §5, no padding) of
//
//	version (1) | key id (4) | session id (32) | HMAC-SHA256 tag (32)
//
// where the tag covers the first three fields under the cookie subkey of
// the key named by the key id.
const (
	cookieVersion = 1
	cookieBinLen  = 1 + kidLen + IDLen + sha256.Size
)

// CookieLen is the length of an encoded session cookie value: unpadded
// base64 of cookieBinLen bytes.
const CookieLen = (cookieBinLen*8 + 5) / 6

// cookieB64 rejects non-zero padding bits, so one id has exactly one
// encoding.
var cookieB64 = base64.RawURLEncoding.Strict()

// Decode's errors are made once: a flood of forged cookies costs no
// allocation, and nothing of the attacker's input is echoed into logs.
var (
	errCookieLength  = fmt.Errorf("%w: wrong length", ErrInvalidCookie)
	errCookieBase64  = fmt.Errorf("%w: not base64url", ErrInvalidCookie)
	errCookieVersion = fmt.Errorf("%w: unknown version", ErrInvalidCookie)
	errCookieKey     = fmt.Errorf("%w: issued under a key that is not in the ring", ErrInvalidCookie)
	errCookieTag     = fmt.Errorf("%w: bad tag", ErrInvalidCookie)
	errCookieZero    = fmt.Errorf("%w: zero id", ErrInvalidCookie)
)

// CookieCodec turns session ids into cookie values and back. Obtain one
// from Manager.Codec; it is safe for concurrent use.
type CookieCodec struct {
	ring *keyRing
}

// Encode returns the cookie value for id, or "" when the key that issued id
// is not in the ring (the zero ID included).
func (c *CookieCodec) Encode(id ID) string {
	k := c.ring.byID(id.kid)
	if k == nil || id.IsZero() {
		return ""
	}
	var b [cookieBinLen]byte
	b[0] = cookieVersion
	binary.BigEndian.PutUint32(b[1:], id.kid)
	copy(b[1+kidLen:], id.raw[:])
	mac(&k.cookieMACs, b[1+kidLen+IDLen:1+kidLen+IDLen], b[:1+kidLen+IDLen])
	return cookieB64.EncodeToString(b[:])
}

// Decode verifies a cookie value and returns the id it names. Every
// failure wraps ErrInvalidCookie; none needs a store lookup.
func (c *CookieCodec) Decode(s string) (ID, error) {
	if len(s) != CookieLen {
		return ID{}, errCookieLength
	}
	var b [cookieBinLen]byte
	if n, err := cookieB64.Decode(b[:], []byte(s)); err != nil || n != cookieBinLen {
		return ID{}, errCookieBase64
	}
	if b[0] != cookieVersion {
		return ID{}, errCookieVersion
	}
	kid := binary.BigEndian.Uint32(b[1:])
	k := c.ring.byID(kid)
	if k == nil {
		return ID{}, errCookieKey
	}
	var tag [sha256.Size]byte
	mac(&k.cookieMACs, tag[:0], b[:1+kidLen+IDLen])
	if !hmac.Equal(tag[:], b[1+kidLen+IDLen:]) {
		return ID{}, errCookieTag
	}
	id := ID{kid: kid}
	copy(id.raw[:], b[1+kidLen:])
	if id.IsZero() {
		return ID{}, errCookieZero
	}
	return id, nil
}

// cookieValues returns the values of the cookies in r named exactly name
// (cookie names are case-sensitive). Names that merely look
// alike (another case, another prefix, a chunk suffix) do not count.
func cookieValues(r *http.Request, name string) (first string, n int) {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(part, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			if n == 0 {
				first = strings.TrimSpace(v)
			}
			n++
		}
	}
	return first, n
}

// cookie builds the session cookie. __Host- requires Secure, Path=/ and no
// Domain (RFC 6265bis §4.1.3.2); HttpOnly keeps it from scripts; Lax keeps
// it off cross-site subrequests and POSTs (RFC 6265bis §8.8) while a link
// from another site still arrives logged in.
func sessionCookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	switch {
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
		if c.MaxAge == 0 {
			c.MaxAge = 1
		}
	default:
		c.MaxAge = -1
	}
	return c
}
