package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// client is one keep-alive HTTP/1.1 connection, written by hand on top of
// crypto/tls. The generator shares its CPU with the upstream, so it must
// cost little: net/http's transport would add goroutines per connection,
// allocate a header map per response and open more connections when all
// are busy, which also changes what is measured. It redials after any
// error.
type client struct {
	addr string
	tls  *tls.Config

	conn *tls.Conn
	br   *bufio.Reader
}

// statusError is a response other than 200 OK.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("status %d", e.code) }

// do sends req and reads the whole response, all before deadline.
func (c *client) do(req []byte, deadline time.Time) error {
	if c.conn == nil {
		if err := c.dial(deadline); err != nil {
			return err
		}
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		c.close()
		return err
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return err
	}
	status, keep, err := readResponse(c.br)
	if err != nil || !keep {
		c.close()
	}
	if err != nil {
		return err
	}
	if status != 200 {
		return &statusError{status}
	}
	return nil
}

func (c *client) dial(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 30 * time.Second}, Config: c.tls}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.conn = nc.(*tls.Conn)
	if c.br == nil {
		c.br = bufio.NewReaderSize(c.conn, 16<<10)
	} else {
		c.br.Reset(c.conn)
	}
	return nil
}

func (c *client) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

var errMalformed = errors.New("malformed response")

// readResponse reads one response to a GET from br and discards its body.
// It returns the status code and whether the connection may be reused. It
// reads what the servers under test send — a body framed by Content-Length
// or chunked, or a bodiless status — and allocates nothing on that path.
func readResponse(br *bufio.Reader) (status int, keepAlive bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return 0, false, err
	}
	// HTTP/1.1 200 OK
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, ok := atoi(line[9:12])
	if !ok {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keepAlive = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		line, err := readLine(br)
		if err != nil {
			return 0, false, err
		}
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			return 0, false, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, ok := atoi(value)
			if !ok {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = int64(n)
		case asciiEqualFold(name, "Transfer-Encoding"):
			chunked = asciiEqualFold(value, "chunked")
			if !chunked {
				return 0, false, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, value)
			}
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				keepAlive = false
			}
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
	case chunked:
		err = discardChunked(br)
	case length >= 0:
		_, err = br.Discard(int(length))
	default:
		// No framing: the body runs to the end of the connection.
		_, err = io.Copy(io.Discard, br)
		keepAlive = false
	}
	if err != nil {
		return 0, false, err
	}
	return status, keepAlive, nil
}

// discardChunked reads a chunked body (RFC 9112 §7.1) and its trailer.
func discardChunked(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			break
		}
		if _, err := br.Discard(int(n)); err != nil {
			return err
		}
		if crlf, err := readLine(br); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errMalformed)
		}
	}
	for { // trailer fields, up to the empty line
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// readLine returns the next line without its CRLF (or bare LF). The slice
// is only valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, br.Size())
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// atoi parses a non-negative decimal of at most 18 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// asciiEqualFold compares b with the ASCII string s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
