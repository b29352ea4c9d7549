package proxy

import (
	"io"
	"testing"
	"time"
)

func frame(length int, typ, flags byte) []byte {
	return []byte{byte(length >> 16), byte(length >> 8), byte(length), typ, flags, 0, 0, 0, 1}
}

func TestH2WatchArms(t *testing.T) {
	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	tests := []struct {
		name  string
		parts [][]byte
		armed bool
	}{
		{"complete header block", [][]byte{preface, frame(3, h2FrameHeaders, h2FlagEndHeaders), {1, 2, 3}}, false},
		{"open header block", [][]byte{preface, frame(3, h2FrameHeaders, 0), {1, 2, 3}}, true},
		{"closed by continuation", [][]byte{preface, frame(1, h2FrameHeaders, 0), {1}, frame(1, h2FrameContinuation, h2FlagEndHeaders), {2}}, false},
		{"data frame payload that looks like headers", [][]byte{preface, frame(9, 0x0, 0), frame(3, h2FrameHeaders, 0)}, false},
		{"split frame header", [][]byte{preface, frame(2, h2FrameHeaders, 0)[:4], frame(2, h2FrameHeaders, 0)[4:], {1, 2}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &h2Watch{limit: time.Hour, preface: len(preface)}
			for _, p := range tt.parts {
				w.scan(p)
			}
			if armed := w.timer != nil; armed != tt.armed {
				t.Errorf("armed = %v, want %v", armed, tt.armed)
			}
			w.disarm()
		})
	}
}

// FuzzH2Watch feeds arbitrary byte streams, in arbitrary pieces, to the
// frame follower: it must never panic or read out of bounds.
func FuzzH2Watch(f *testing.F) {
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x03\x01\x00\x00\x00\x00\x01abc"), uint8(5))
	f.Add([]byte("\x00\x00\x00\x09\x04\x00\x00\x00\x01"), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		w := &h2Watch{limit: time.Hour, preface: 24}
		n := int(step%16) + 1
		for len(b) > 0 {
			k := min(n, len(b))
			w.scan(b[:k])
			b = b[k:]
		}
		w.disarm()
	})
}

// FuzzOverrideGuard checks the body scanner on arbitrary bodies in
// arbitrary pieces: it never panics, and a body it passes, scanned whole,
// has no override key either (the carry-over window loses nothing).
func FuzzOverrideGuard(f *testing.F) {
	f.Add([]byte(`{"name":"x","_method":"DELETE"}`), uint8(3))
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--b--"), uint8(7))
	f.Add([]byte(`{"payment_method":"card"}`), uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		g := newOverrideGuard(io.NopCloser(&chunkReader{b: b, n: int(step%32) + 1}))
		_, err := io.ReadAll(g)
		if err == nil && hasOverrideKey(b) {
			t.Fatalf("override key in %q passed in pieces of %d", b, int(step%32)+1)
		}
	})
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}
