package ratelimit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
)

// Keys are built from components joined with ':'. A component never
// contains ':' itself, so keys of different shapes cannot meet: KeyFor
// makes two components, KeyForIP two (kind ip4, ip6 or ip, which KeyFor
// callers leave to it), WithRoute two more in front of its key. A component is either the text itself with
// '%', ':' and '#' percent-escaped, when that is printable ASCII of at
// most maxPlain bytes, or '#' and the unpadded base64url SHA-256 of the
// text (44 bytes), which plain components never start with.

// maxPlain is the longest component kept readable; longer ones are hashed.
const maxPlain = 128

// KeyForIP returns the key of a client address. An IPv4 address is its
// own key, also when written as an IPv4-mapped IPv6 address. An IPv6
// address counts as its /64: a subscriber usually holds a whole /64 and
// could otherwise take a fresh address, and a fresh quota, per request.
// The zero Addr gets one key of its own, shared by every caller of it.
func KeyForIP(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case addr.Is4():
		var buf [4 + len("255.255.255.255")]byte
		return string(addr.AppendTo(append(buf[:0], "ip4:"...)))
	case addr.Is6():
		a := addr.As16() // without the zone
		var buf [4 + 16]byte
		copy(buf[:], "ip6:")
		hex.Encode(buf[4:], a[:8])
		return string(buf[:])
	}
	return "ip:invalid"
}

// KeyFor returns the key of a subject: kind is its kind (user, apikey,
// service; any string) and id its identifier within the kind. Different
// (kind, id) pairs give different keys whatever the bytes, so a client
// choosing its id cannot take another's bucket nor make its own anew. The
// key is at most 257 bytes of printable ASCII however long id is: a kind
// or id that is longer than 128 bytes once escaped, or holds anything but
// printable ASCII, is replaced by its SHA-256.
func KeyFor(kind, id string) string {
	buf := make([]byte, 0, min(len(kind), maxPlain)+min(len(id), maxPlain)+8)
	buf = appendComponent(buf, kind)
	buf = append(buf, ':')
	buf = appendComponent(buf, id)
	return string(buf)
}

// WithRoute scopes key to one route, so a route with its own quota does
// not share a bucket with the same client's other requests. routeID is
// escaped or hashed as KeyFor does. Applied to a key from KeyFor or
// KeyForIP the result is within MaxKeyLen; do not nest it.
func WithRoute(routeID, key string) string {
	buf := make([]byte, 0, len("route:")+min(len(routeID), maxPlain)+1+len(key)+8)
	buf = append(buf, "route:"...)
	buf = appendComponent(buf, routeID)
	buf = append(buf, ':')
	buf = append(buf, key...)
	return string(buf)
}

func appendComponent(buf []byte, s string) []byte {
	if plain(s) {
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case '%', ':', '#':
				buf = append(buf, '%', upperhex[c>>4], upperhex[c&15])
			default:
				buf = append(buf, c)
			}
		}
		return buf
	}
	sum := sha256.Sum256([]byte(s))
	buf = append(buf, '#')
	return base64.RawURLEncoding.AppendEncode(buf, sum[:])
}

// plain reports whether s may stay readable: printable ASCII, at most
// maxPlain bytes once escaped.
func plain(s string) bool {
	n := len(s)
	for i := 0; i < len(s) && n <= maxPlain; i++ {
		switch c := s[i]; {
		case c < 0x21 || c > 0x7e:
			return false
		case c == '%' || c == ':' || c == '#':
			n += 2
		}
	}
	return n <= maxPlain
}

const upperhex = "0123456789ABCDEF"
