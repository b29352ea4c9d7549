package framing

import (
	"bytes"
	"math"
)

// state is where in a request the parser stands.
type state uint8

const (
	stHead      state = iota // in a request head, or before one
	stBody                   // in a Content-Length body; remain bytes left
	stChunkSize              // expecting a chunk-size line
	stChunkData              // in chunk data; remain bytes left
	stChunkEnd               // expecting the CRLF that ends chunk data
	stTrailer                // in the trailer section of a chunked body
	stRaw                    // passthrough: nothing is parsed any more
	stFailed                 // a violation was found; err says which
)

// parser validates an HTTP/1.x request stream incrementally in buf.
//
// The buffer is split by offsets r <= ok <= p <= w: buf[r:ok] is validated
// and waits for the reader, buf[ok:p] is held (complete lines of a head,
// trailer line or chunk line still in progress), buf[p:w] is not parsed
// yet. q >= p marks how far a search for LF has got, so that a line
// arriving a byte at a time is scanned once, not once per byte.
type parser struct {
	maxHead      int
	maxChunkLine int

	buf            []byte
	r, ok, p, q, w int

	st      state
	remain  int64 // body or chunk bytes left
	held    int   // bytes of the trailer section so far
	h       head  // the head being parsed
	upgrade bool  // the current request switches to raw after its body
	err     *Error
	grace   int // bytes of a refused head still to release before err

	// requests counts complete requests, so that tests can compare
	// where this parser and net/http see message boundaries.
	requests int
}

// refusedHeadBytes is how much of a refused head is released before the
// error. net/http reads the first request on a connection at once, but
// before each later one it waits until bufio can Peek(4), and closes
// without an answer if that fails (server.go, conn.serve). Four bytes let
// it go on to readRequest, meet the error and answer 400. No request line
// fits in four bytes, so net/http cannot act on them.
//
// They are released only once everything before the refused head has been
// read (see grace), so that net/http's read-ahead does not take them with
// the last valid request. The one-byte background read net/http runs
// while that request's handler works then gets one of them instead of the
// error, which it would take for a dead client and cancel the request.
const refusedHeadBytes = 4

// fail records a violation. Bytes not yet validated stay unreleased, but
// for the first bytes of a refused head (see refusedHeadBytes).
func (p *parser) fail(reason string) {
	if p.st == stHead {
		p.grace = min(refusedHeadBytes, p.w-p.ok)
	}
	p.err = &Error{Reason: reason}
	p.st = stFailed
}

// reset rewinds an empty buffer, and drops it if a large head made it
// grow, so that an idle connection holds no more than initialBuf.
func (p *parser) reset() {
	p.r, p.ok, p.p, p.q, p.w = 0, 0, 0, 0, 0
	if len(p.buf) > initialBuf {
		p.buf = nil
	}
}

// direct reports how many bytes a Read may take from the wrapped conn
// straight into the caller's buffer, which is safe only with nothing
// buffered and in a state that releases bytes without looking at them.
func (p *parser) direct() int64 {
	switch p.st {
	case stBody, stChunkData:
		return p.remain
	case stRaw:
		return math.MaxInt64
	}
	return 0
}

// consumed accounts for n bytes read directly (see direct).
func (p *parser) consumed(n int) {
	if p.st == stRaw || n <= 0 {
		return
	}
	p.remain -= int64(n)
	if p.remain == 0 {
		p.endData()
	}
}

// makeRoom compacts the buffer and grows it, up to maxBuf, so that a read
// has space. It reports false if the buffer is full at maxBuf.
func (p *parser) makeRoom(maxBuf int) bool {
	if p.r > 0 {
		n := copy(p.buf, p.buf[p.r:p.w])
		p.ok -= p.r
		p.p -= p.r
		p.q -= p.r
		p.w = n
		p.r = 0
	}
	if p.w < len(p.buf) {
		return true
	}
	if len(p.buf) >= maxBuf {
		return false
	}
	size := min(max(2*len(p.buf), initialBuf), maxBuf)
	buf := make([]byte, size)
	copy(buf, p.buf[:p.w])
	p.buf = buf
	return true
}

// passthrough stops parsing: everything buffered and all that follows is
// released as it is.
func (p *parser) passthrough() {
	if p.st == stFailed || p.st == stRaw {
		return
	}
	p.st = stRaw
	p.ok, p.p, p.q = p.w, p.w, p.w
}

// advance parses buf[p:w] as far as it can.
func (p *parser) advance() {
	for p.p < p.w {
		switch p.st {
		case stHead:
			if !p.headLine() {
				return
			}
		case stBody, stChunkData:
			n := min(int64(p.w-p.p), p.remain)
			p.p += int(n)
			p.ok = p.p
			p.remain -= n
			if p.remain == 0 {
				p.endData()
			}
		case stChunkEnd:
			// RFC 9112 §7.1: chunk-data is followed by exactly CRLF.
			if p.buf[p.p] != '\r' {
				p.fail(reasonBadChunkEnd)
				return
			}
			if p.w-p.p < 2 {
				return
			}
			if p.buf[p.p+1] != '\n' {
				p.fail(reasonBadChunkEnd)
				return
			}
			p.p += 2
			p.ok = p.p
			p.st = stChunkSize
		case stChunkSize:
			if !p.chunkSizeLine() {
				return
			}
		case stTrailer:
			if !p.trailerLine() {
				return
			}
		case stRaw:
			p.p, p.q, p.ok = p.w, p.w, p.w
		default:
			return
		}
	}
}

// nextLine returns the next complete line at p without its CRLF and moves
// p past it. It returns false if the line is incomplete or broke a rule;
// limit bounds the line's length including CRLF.
func (p *parser) nextLine(limit int, tooLong string) ([]byte, bool) {
	p.q = max(p.q, p.p)
	i := bytes.IndexByte(p.buf[p.q:p.w], '\n')
	if i < 0 {
		p.q = p.w
		if p.w-p.p > limit {
			p.fail(tooLong)
		}
		return nil, false
	}
	end := p.q + i + 1
	if end-p.p > limit {
		p.fail(tooLong)
		return nil, false
	}
	line := p.buf[p.p:end]
	p.p, p.q = end, end
	// RFC 9112 §2.2 lets a recipient accept a bare LF as a line
	// terminator; a front end that does not would frame the message
	// differently, so only CRLF is accepted.
	if len(line) < 2 || line[len(line)-2] != '\r' {
		p.fail(reasonBareLF)
		return nil, false
	}
	return line[:len(line)-2], true
}

// headLine consumes one line of a request head.
func (p *parser) headLine() bool {
	line, ok := p.nextLine(p.maxHead-(p.p-p.ok), reasonHeadTooLarge)
	if !ok {
		return false
	}
	if !p.h.started {
		if len(line) == 0 {
			// RFC 9112 §2.2: a server SHOULD ignore at least one empty
			// line before the request line. The empty lines are held
			// and released with the head, counting toward its limit.
			return true
		}
		p.h.started = true
		return p.check(p.h.requestLine(line))
	}
	if len(line) == 0 {
		return p.endHead()
	}
	if line[0] == ' ' || line[0] == '\t' {
		// RFC 9112 §5.2: obs-fold in a request must be rejected or
		// replaced; replacing would change the bytes net/http sees.
		p.fail(reasonObsFold)
		return false
	}
	return p.check(p.h.field(line))
}

func (p *parser) check(reason string) bool {
	if reason != "" {
		p.fail(reason)
		return false
	}
	return true
}

// endHead decides the body length of a complete head (RFC 9112 §6.3) and
// releases the head.
func (p *parser) endHead() bool {
	h := &p.h
	switch {
	case h.codings > 0 && h.http10:
		// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding
		// must be treated as having faulty framing.
		p.fail(reasonCodingInHTTP10)
		return false
	case h.codings > 0 && h.lengths > 0:
		// RFC 9112 §6.1 allows a server to reject this outright, and
		// it is the classic CL.TE / TE.CL smuggling vector (§11.2).
		p.fail(reasonLengthAndChunked)
		return false
	}
	p.ok = p.p
	p.upgrade = h.upgrade
	switch {
	case h.codings > 0:
		p.st = stChunkSize
	case h.length > 0:
		p.st = stBody
		p.remain = h.length
	default:
		// RFC 9112 §6.3 rule 7: no Content-Length or
		// Transfer-Encoding means no body in a request.
		p.endMessage()
	}
	return true
}

// endData moves on once a body or a chunk's data is complete.
func (p *parser) endData() {
	if p.st == stChunkData {
		p.st = stChunkEnd
		return
	}
	p.endMessage()
}

// endMessage moves on after a complete request: to the next request, or
// to passthrough after an upgrade request.
func (p *parser) endMessage() {
	p.requests++
	if p.upgrade {
		p.st = stRaw
		return
	}
	p.st = stHead
	p.h = head{}
}

// chunkSizeLine consumes one chunk-size line (RFC 9112 §7.1).
func (p *parser) chunkSizeLine() bool {
	line, ok := p.nextLine(p.maxChunkLine, reasonChunkLineTooLong)
	if !ok {
		return false
	}
	n, reason := parseChunkLine(line)
	if !p.check(reason) {
		return false
	}
	p.ok = p.p
	if n == 0 {
		p.st = stTrailer
		p.held = 0
		return true
	}
	p.st = stChunkData
	p.remain = n
	return true
}

// trailerLine consumes one line of the trailer section (RFC 9112 §7.1.2),
// which has the syntax of a header section.
func (p *parser) trailerLine() bool {
	line, ok := p.nextLine(p.maxHead-p.held, reasonTrailerTooLarge)
	if !ok {
		return false
	}
	p.held += len(line) + 2
	if len(line) == 0 {
		p.ok = p.p
		p.endMessage()
		return true
	}
	if line[0] == ' ' || line[0] == '\t' {
		p.fail(reasonObsFold)
		return false
	}
	if _, _, reason := splitField(line); !p.check(reason) {
		return false
	}
	p.ok = p.p
	return true
}
