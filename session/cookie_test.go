package session

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// fuzzCodec is a codec with fixed keys, so committed seeds stay valid.
func fuzzCodec(t testing.TB) *CookieCodec {
	ring, err := newKeyRing([][]byte{testKey("fuzz-active"), testKey("fuzz-old")})
	if err != nil {
		t.Fatal(err)
	}
	return &CookieCodec{ring: ring}
}

func TestCookieRoundTrip(t *testing.T) {
	c := fuzzCodec(t)
	for _, k := range c.ring.keys {
		id := newID(k.id)
		s := c.Encode(id)
		if len(s) != CookieLen || strings.ContainsAny(s, "+/=;, \"") {
			t.Errorf("Encode = %q: want %d base64url characters", s, CookieLen)
		}
		got, err := c.Decode(s)
		if err != nil || got != id {
			t.Errorf("Decode(Encode(id)) = %v, %v; want id", got, err)
		}
	}
	if s := c.Encode(ID{}); s != "" {
		t.Errorf("Encode(zero ID) = %q, want empty", s)
	}
	if s := c.Encode(newID(12345)); s != "" {
		t.Errorf("Encode(id of an unknown key) = %q, want empty", s)
	}
	if _, err := c.Decode(""); !errors.Is(err, ErrInvalidCookie) {
		t.Errorf("Decode(empty) = %v, want ErrInvalidCookie", err)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts is the one
// canonical encoding of the id it returns.
func FuzzDecode(f *testing.F) {
	c := fuzzCodec(f)
	valid := c.Encode(newID(c.ring.keys[0].id))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(valid + "A")
	f.Add("")
	f.Add(strings.Repeat("A", CookieLen))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := c.Decode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCookie) {
				t.Fatalf("Decode(%q) = %v, not an ErrInvalidCookie", s, err)
			}
			return
		}
		if id.IsZero() {
			t.Fatalf("Decode(%q) accepted the zero id", s)
		}
		again := c.Encode(id)
		if again != s {
			t.Fatalf("Encode(Decode(%q)) = %q; a second encoding of one id was accepted", s, again)
		}
		if id2, err := c.Decode(again); err != nil || id2 != id {
			t.Fatalf("Decode(Encode(id)) = %v, %v; want the id", id2, err)
		}
	})
}

func TestCookieLen(t *testing.T) {
	if got := base64.RawURLEncoding.EncodedLen(cookieBinLen); got != CookieLen {
		t.Errorf("CookieLen = %d, want %d", CookieLen, got)
	}
}
