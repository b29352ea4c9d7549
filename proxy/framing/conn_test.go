package framing

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A head is released only whole: a partial head leaves Read blocked on the
// wrapped conn, and a deadline ends that wait with the wrapped conn's own
// timeout error, after which parsing resumes where it was.
func TestConnHoldsHeadAndKeepsTimeouts(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{})
	defer c.Close()

	half := len(typicalGET) / 2
	go client.Write([]byte(typicalGET[:half]))
	buf := make([]byte, 4096)
	// The first Read takes the half head and then waits for more.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := c.Read(buf)
	if n != 0 {
		t.Fatalf("Read(half a head) = %d bytes %q, want none", n, buf[:n])
	}
	ne, ok := err.(net.Error)
	if !ok || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read(half a head) error = %#v, want the pipe's own timeout error", err)
	}

	c.SetReadDeadline(time.Time{})
	go client.Write([]byte(typicalGET[half:]))
	var got []byte
	for len(got) < len(typicalGET) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("Read(rest of head) error = %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != typicalGET {
		t.Errorf("Read() = %q, want %q", got, typicalGET)
	}
}

// net/http aborts its background read by setting a deadline in the past;
// Read must then return at once, even with a partial head buffered.
func TestConnAbortPendingRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{})
	defer c.Close()
	go client.Write([]byte("GET / HT"))

	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		if err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("Read() after deadline = %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read() did not return after the deadline passed")
	}
}

// Releasable bytes are returned without touching the wrapped conn, so a
// reader is never stalled on a pipelined request that is still arriving.
func TestConnReleasesWithoutBlocking(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{})
	defer c.Close()
	go client.Write([]byte(head0 + "GET /next HTTP/1.1\r\nHo"))

	first := make([]byte, 1)
	if n, err := c.Read(first); n != 1 || err != nil {
		t.Fatalf("Read() = %d, %v, want 1, nil", n, err)
	}
	// Any read that reached the pipe now would fail at once.
	c.SetReadDeadline(time.Unix(1, 0))
	rest, err := readAll(c, 7)
	if got := string(first) + string(rest); got != head0 {
		t.Errorf("Read() released %q, want %q", got, head0)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("Read() past the released bytes = %v, want a timeout", err)
	}
}

func TestConnPassthrough(t *testing.T) {
	tests := []struct {
		name string
		in   string
		out  string // released before Passthrough
	}{
		{"between requests", head0 + "\x00\xffbinary", head0},
		{"inside a head", head0 + "GET / HTTP/1.1\r\nHo", head0},
		{"inside a body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc\n\x00", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc\n\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			c := NewConn(server, Limits{})
			defer c.Close()
			go func() {
				client.Write([]byte(tt.in))
				client.Close()
			}()
			buf := make([]byte, 4096)
			var got []byte
			for len(got) < len(tt.out) {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("Read() error = %v", err)
				}
				got = append(got, buf[:n]...)
			}
			c.Passthrough()
			rest, err := readAll(c, 3)
			got = append(got, rest...)
			if err != io.EOF || string(got) != tt.in {
				t.Errorf("Read() after Passthrough = %q, %v, want %q, EOF", got, err, tt.in)
			}
		})
	}
}

// A violation is final: switching to passthrough must not release the
// bytes that were refused.
func TestConnPassthroughAfterViolation(t *testing.T) {
	c := pipe(t, Limits{}, []byte("GET / HTTP/1.1\nHost: a\r\n\r\n"))
	_, err := readAll(c, 64)
	c.Passthrough()
	n, again := c.Read(make([]byte, 64))
	if reasonOf(err) != reasonBareLF || n != 0 || again != err {
		t.Errorf("Read() after Passthrough = %d, %v, want 0, %v", n, again, err)
	}
}

func TestConnReadAfterClose(t *testing.T) {
	c := pipe(t, Limits{}, []byte(head0+head0))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("Read() error = %v", err)
	}
	c.Close()
	if n, err := c.Read(make([]byte, 64)); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read() after Close = %d, %v, want 0, net.ErrClosed", n, err)
	}
}

// Close from another goroutine ends a Read blocked on the wrapped conn.
func TestConnCloseDuringRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{})
	go client.Write([]byte("GET / HTTP/1.1\r\n"))
	done := make(chan error, 1)
	go func() {
		_, err := readAll(c, 64)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read() after Close = %v, want a closed-connection error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read() did not return after Close")
	}
}

// An error that arrives with data is reported after the data.
func TestConnDataWithError(t *testing.T) {
	boom := errors.New("boom")
	c := NewConn(&errConn{memConn: memConn{data: []byte(head0 + "GET")}, err: boom}, Limits{})
	got, err := readAll(c, 5)
	if string(got) != head0 || err != boom {
		t.Errorf("Read() = %q, %v, want %q, %v", got, err, head0, boom)
	}
}

// errConn returns its data in one read together with err.
type errConn struct {
	memConn
	err error
}

func (e *errConn) Read(b []byte) (int, error) {
	n, _ := e.memConn.Read(b)
	if n == 0 {
		return 0, io.EOF
	}
	return n, e.err
}

// Memory follows the limits, never the body: large bodies stream through
// the same small buffer.
func TestConnMemoryBounded(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	var chunked bytes.Buffer
	chunked.WriteString(chunkedHead)
	for i := 0; i < len(body); i += 100_000 {
		part := body[i:min(i+100_000, len(body))]
		chunked.WriteString(strings.ToLower(strconvHex(len(part))) + "\r\n")
		chunked.Write(part)
		chunked.WriteString("\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	tests := []struct {
		name string
		in   []byte
	}{
		{"Content-Length", append([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n"), body...)},
		{"chunked", chunked.Bytes()},
		{"after a large head", append([]byte("GET / HTTP/1.1\r\nHost: a\r\nX: "+strings.Repeat("a", 50_000)+"\r\n\r\n"), head0...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(&memConn{data: tt.in, sizes: []int{1500, 7, 65536, 3}}, Limits{})
			got, err := readAll(c, 3000)
			if err != io.EOF || !bytes.Equal(got, tt.in) {
				t.Fatalf("Read() = %d bytes, %v, want %d bytes, EOF", len(got), err, len(tt.in))
			}
			if n := cap(c.p.buf); n > initialBuf {
				t.Errorf("buffer grew to %d bytes, want at most %d", n, initialBuf)
			}
		})
	}
}

func strconvHex(n int) string {
	const digits = "0123456789abcdef"
	var b []byte
	for ; n > 0; n >>= 4 {
		b = append([]byte{digits[n&15]}, b...)
	}
	return string(b)
}

func TestNewConnLimits(t *testing.T) {
	tests := []struct {
		name               string
		in                 Limits
		head, chunk, limit int
	}{
		{"zero means defaults", Limits{}, 64 << 10, 4 << 10, 64<<10 + 1},
		{"negative means defaults", Limits{MaxHeadBytes: -1, MaxChunkLineBytes: -1}, 64 << 10, 4 << 10, 64<<10 + 1},
		{"custom", Limits{MaxHeadBytes: 100, MaxChunkLineBytes: 200}, 100, 200, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(&memConn{}, tt.in)
			if c.p.maxHead != tt.head || c.p.maxChunkLine != tt.chunk || c.maxBuf != tt.limit {
				t.Errorf("NewConn(%+v) limits = %d, %d, %d, want %d, %d, %d", tt.in, c.p.maxHead, c.p.maxChunkLine, c.maxBuf, tt.head, tt.chunk, tt.limit)
			}
		})
	}
}

func TestConnDelegates(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := NewConn(server, Limits{})
	if c.Unwrap() != server {
		t.Errorf("Unwrap() = %v, want the wrapped conn", c.Unwrap())
	}
	if c.LocalAddr() != server.LocalAddr() || c.RemoteAddr() != server.RemoteAddr() {
		t.Errorf("addresses = %v, %v, want the wrapped conn's", c.LocalAddr(), c.RemoteAddr())
	}
	go io.Copy(io.Discard, client)
	if n, err := c.Write([]byte("HTTP/1.1 200 OK\r\n")); n != 17 || err != nil {
		t.Errorf("Write() = %d, %v, want 17, nil", n, err)
	}
	c.SetWriteDeadline(time.Unix(1, 0))
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write() past deadline error = %v, want a timeout", err)
	}
	c.SetDeadline(time.Unix(1, 0))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read() past deadline error = %v, want a timeout", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Error("Close() left the wrapped conn open")
	}
}

func TestErrorMessage(t *testing.T) {
	err := error(&Error{Reason: reasonBareLF})
	if got, want := err.Error(), "framing: line not terminated by CRLF"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if _, ok := err.(net.Error); ok {
		t.Error("*Error is a net.Error; net/http would close without answering 400")
	}
}
