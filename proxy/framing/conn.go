package framing

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Limits bound what a request head may contain, and with it the memory a
// Conn holds: bodies stream through and never count.
type Limits struct {
	// MaxHeadBytes bounds a request head, from the first byte of its
	// request line (or of any empty lines before it) to the empty line that
	// ends it, and separately the trailer section of a chunked body.
	// Zero or negative means 64 KiB.
	MaxHeadBytes int
	// MaxChunkLineBytes bounds one chunk-size line including its
	// extensions and CRLF. Zero or negative means 4 KiB, the limit
	// net/http applies itself.
	MaxChunkLineBytes int
}

const (
	defaultMaxHead      = 64 << 10
	defaultMaxChunkLine = 4 << 10
	// initialBuf is the buffer a Conn starts with; it grows only while a
	// head larger than this is in flight.
	initialBuf = 4 << 10
	// maxEmptyReads is how many (0, nil) reads from the wrapped conn are
	// tolerated in a row before Read gives up, as bufio does.
	maxEmptyReads = 100
)

// Conn is a net.Conn whose Read returns only bytes of validated HTTP/1.x
// request framing. Create it with NewConn; the zero value is not usable.
//
// Read holds back each request head until its final CRLF has arrived and
// the whole head is accepted, then releases it; body bytes, framed by
// Content-Length or chunked coding, are released as they arrive, with chunk
// lines and trailer lines held only until each is complete. Requests follow
// one another on a persistent connection, pipelined or not.
//
// When the stream violates framing, Read first returns every byte that
// precedes the offending head or chunk line, then, for a head, its first
// few bytes on a read of their own, never enough to form a request line:
// net/http needs them to go on to read the request and answer 400 rather
// than close silently. Every later call returns a *Error.
//
// A request with a non-empty Upgrade field switches the Conn to
// passthrough after the request's head and body: the bytes that follow a
// 101 response are another protocol (RFC 9110 §7.8), so they are released
// unparsed. The server must therefore not read another request from a Conn
// after an Upgrade request it refused: every response other than 101 to a
// request whose Upgrade field is non-empty must close the connection
// ("Connection: close"), or the bytes that follow reach net/http
// unchecked. A request with more than one Upgrade field line is refused,
// so that the server and the Conn see the same value. Passthrough switches
// explicitly, for example after a CONNECT tunnel is established.
//
// Like any net.Conn, a Conn supports one reader at a time, concurrent with
// a writer and with Close and the deadline setters, which all act on the
// wrapped conn directly.
type Conn struct {
	conn   net.Conn
	maxBuf int

	raw    atomic.Bool           // set by Passthrough
	closed atomic.Bool           // set by Close
	failed atomic.Pointer[Error] // the violation, once Read has returned it

	// What follows belongs to the reader.
	p parser
	// rerr is an error from the wrapped conn that arrived with bytes and
	// is reported once those bytes are gone.
	rerr error
}

var _ net.Conn = (*Conn)(nil)

// NewConn wraps c, a decrypted connection whose peer sends HTTP/1.x
// requests. It reads nothing until the first Read.
func NewConn(c net.Conn, l Limits) *Conn {
	if l.MaxHeadBytes <= 0 {
		l.MaxHeadBytes = defaultMaxHead
	}
	if l.MaxChunkLineBytes <= 0 {
		l.MaxChunkLineBytes = defaultMaxChunkLine
	}
	// The buffer must hold one byte more than the largest unit held back,
	// so that a unit over its limit is seen to be over it.
	return &Conn{
		conn:   c,
		maxBuf: max(l.MaxHeadBytes, l.MaxChunkLineBytes) + 1,
		p:      parser{maxHead: l.MaxHeadBytes, maxChunkLine: l.MaxChunkLineBytes},
	}
}

// Read reads validated bytes into b. It blocks on the wrapped conn only
// when it holds nothing it may release, and returns the wrapped conn's
// errors unchanged, so a timeout is still a net.Error whose Timeout
// reports true.
func (c *Conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.closedError()
	}
	if len(b) == 0 {
		return 0, nil
	}
	p := &c.p
	if c.raw.Load() {
		p.passthrough()
	}
	for empty := 0; ; {
		if p.r < p.ok {
			n := copy(b, p.buf[p.r:p.ok])
			p.r += n
			return n, nil
		}
		if p.err != nil {
			if p.grace > 0 {
				p.ok += p.grace
				p.grace = 0
				continue
			}
			c.failed.CompareAndSwap(nil, p.err)
			return 0, p.err
		}
		if err := c.rerr; err != nil {
			c.rerr = nil
			return 0, err
		}
		if p.r == p.w {
			p.reset()
			if room := p.direct(); room > 0 {
				// A body or raw stream with nothing buffered: read
				// straight into b, no copy.
				n, err := c.conn.Read(b[:min(int64(len(b)), room)])
				p.consumed(n)
				return n, err
			}
		}
		if !p.makeRoom(c.maxBuf) {
			// Unreachable while the limits hold: a full buffer means
			// a held unit went over its limit and failed already.
			p.fail(reasonHeadTooLarge)
			continue
		}
		n, err := c.conn.Read(p.buf[p.w:])
		if n > 0 {
			p.w += n
			p.advance()
			empty = 0
		} else if err == nil {
			if empty++; empty >= maxEmptyReads {
				err = io.ErrNoProgress
			}
		}
		if err != nil {
			c.rerr = err
		}
	}
}

// closedError is what a Read after Close returns, shaped like the error a
// closed net.Conn returns so that net/http treats it as one.
func (c *Conn) closedError() error {
	err := &net.OpError{Op: "read", Source: c.conn.LocalAddr(), Addr: c.conn.RemoteAddr(), Err: net.ErrClosed}
	if err.Source != nil {
		err.Net = err.Source.Network()
	}
	return err
}

// Passthrough switches c to a raw byte stream: held bytes and all that
// follow are released unparsed. Call it once the connection no longer
// carries HTTP/1.x requests, such as after a successful upgrade (101) or
// CONNECT. It takes effect at the next Read and has no effect after a
// violation was reported. It is safe to call from any goroutine.
func (c *Conn) Passthrough() { c.raw.Store(true) }

// Err returns the framing violation the connection was refused for, nil
// while its framing is valid. Safe for concurrent use: a handler whose
// request context was cancelled by a failed body read uses it to tell a
// smuggling attempt from a client that went away.
func (c *Conn) Err() error {
	if e := c.failed.Load(); e != nil {
		return e
	}
	return nil
}

// Unwrap returns the wrapped connection, for example to reach its
// tls.ConnectionState. Reading from it directly bypasses validation.
func (c *Conn) Unwrap() net.Conn { return c.conn }

// Close closes the wrapped connection. Reads after Close fail with an error
// wrapping net.ErrClosed, even if validated bytes were still buffered.
//
// After a framing violation it closes lingeringly (RFC 9112 §9.6): it ends
// its side of the stream, then reads and discards what the client is still
// sending for a short, bounded time, so that the client reads the 400 before
// the connection goes. Closing with unread bytes makes the kernel send a
// reset, and a reset makes the client drop the answer it had not read yet.
func (c *Conn) Close() error {
	if c.failed.Load() != nil && !c.closed.Swap(true) {
		c.linger()
		return c.conn.Close()
	}
	c.closed.Store(true)
	return c.conn.Close()
}

// Lingering close bounds: at most this long and this many bytes.
const (
	lingerTime  = 250 * time.Millisecond
	lingerBytes = 256 << 10
)

func (c *Conn) linger() {
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerTime))
	buf := make([]byte, 4096)
	for n := 0; n < lingerBytes; {
		k, err := c.conn.Read(buf)
		n += k
		if err != nil {
			return
		}
	}
}

// Write writes to the wrapped connection; responses are not inspected.
func (c *Conn) Write(b []byte) (int, error) { return c.conn.Write(b) }

// LocalAddr returns the wrapped connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the wrapped connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the wrapped connection's read and write deadlines. A
// Read blocked on the wrapped conn returns its timeout error.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the wrapped connection's read deadline. net/http
// uses a deadline in the past to abort a pending read; Read then returns
// the wrapped conn's timeout error and keeps its parsing state.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the wrapped connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }
