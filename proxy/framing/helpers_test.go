package framing

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// memConn is a net.Conn that serves a fixed stream, sizes[i] bytes (cycled,
// 0 meaning all that is left) per Read, then io.EOF. Writes are discarded.
type memConn struct {
	data  []byte
	sizes []int
	reads int
}

func (m *memConn) Read(b []byte) (int, error) {
	if len(m.data) == 0 {
		return 0, io.EOF
	}
	n := len(b)
	if len(m.sizes) > 0 {
		if s := m.sizes[m.reads%len(m.sizes)]; s > 0 {
			n = min(n, s)
		}
	}
	m.reads++
	n = copy(b[:n], m.data)
	m.data = m.data[n:]
	return n, nil
}

func (m *memConn) Write(b []byte) (int, error)        { return len(b), nil }
func (m *memConn) Close() error                       { return nil }
func (m *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(t time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(t time.Time) error { return nil }

// pipe returns a Conn over one end of a net.Pipe whose other end writes
// chunks, one Write each, and then closes. A net.Pipe Read returns at most
// what one Write supplied, so chunks control how the stream arrives.
func pipe(t *testing.T, l Limits, chunks ...[]byte) *Conn {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		defer client.Close()
		for _, c := range chunks {
			if _, err := client.Write(c); err != nil {
				return
			}
		}
	}()
	c := NewConn(server, l)
	t.Cleanup(func() { c.Close() })
	return c
}

// bytewise splits s into one-byte chunks.
func bytewise(s string) [][]byte {
	out := make([][]byte, len(s))
	for i := range len(s) {
		out[i] = []byte{s[i]}
	}
	return out
}

// deliveries are the ways the framing tests split a stream.
var deliveries = []struct {
	name  string
	split func(string) [][]byte
}{
	{"whole", func(s string) [][]byte { return [][]byte{[]byte(s)} }},
	{"bytewise", bytewise},
}

// readAll reads c with a buffer of size n until an error.
func readAll(c *Conn, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		m, err := c.Read(buf)
		out = append(out, buf[:m]...)
		if err != nil {
			return out, err
		}
	}
}

// reasonOf returns the Reason of a framing error, or "" for other errors.
func reasonOf(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Reason
	}
	return ""
}
