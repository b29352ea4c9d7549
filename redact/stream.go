package redact

import (
	"errors"
	"io"
	"slices"
	"sync"
)

// Stats say what a transform did, for the audit event.
type Stats struct {
	// Redacted counts the values each rule removed or replaced, indexed
	// like the rules given to Compile. A value
	// several rules select counts for the strictest one only. Values in
	// rows a filter dropped afterwards are counted too.
	Redacted []int
	// RowsKept and RowsDropped count the elements of filtered arrays.
	RowsKept, RowsDropped int
	// BytesIn and BytesOut count the body and the output.
	BytesIn, BytesOut int64
}

func (s Stats) clone() Stats {
	s.Redacted = slices.Clone(s.Redacted)
	return s
}

// chunkBytes is the most input transformed between two checks of the
// output held: it bounds how far the output can outgrow its limits.
const chunkBytes = 64 << 10

// Transform reads a JSON body from src, applies p to it and writes the
// result to dst. Output is written in pieces of about Options.BufferBytes
// as the body streams; on an error, what was not written yet is
// discarded and the caller must not complete the response (see the
// sentinel errors). It returns what it did, also on an error.
func (p *Program) Transform(dst io.Writer, src io.Reader) (Stats, error) {
	w := p.NewWriter(dst)
	_, err := io.Copy(w, src)
	if err == nil {
		err = w.Close()
	}
	return w.Stats(), err
}

// Writer applies a Program to a body written into it, passing the result
// to the destination. Close must be called at the end of the body: only
// then can a truncated document be told from a complete one.
type Writer struct {
	m      machine
	dst    io.Writer
	buf    []byte // for ReadFrom
	closed bool
}

var (
	_ io.WriteCloser = (*Writer)(nil)
	_ io.ReaderFrom  = (*Writer)(nil)
	_ io.ReadCloser  = (*Reader)(nil)
)

// NewWriter returns a Writer passing p's output to dst.
func (p *Program) NewWriter(dst io.Writer) *Writer {
	w := &Writer{dst: dst}
	w.m.init(p)
	return w
}

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("redact: write after close")

// Write transforms b. An error stops the transform for good: the output
// not yet passed on is discarded and every later call fails the same way.
func (w *Writer) Write(b []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	done := 0
	for done < len(b) {
		k := min(len(b)-done, chunkBytes)
		if err := w.m.feed(b[done : done+k]); err != nil {
			return done, err
		}
		done += k
		if err := w.flush(false); err != nil {
			return done, err
		}
	}
	return done, nil
}

// ReadFrom transforms everything src holds, without Close. Its buffer
// grows with the reads, so that a small body costs a small buffer.
func (w *Writer) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	if w.buf == nil {
		w.buf = make([]byte, 4<<10)
	}
	for {
		n, err := src.Read(w.buf)
		if n > 0 {
			total += int64(n)
			if _, werr := w.Write(w.buf[:n]); werr != nil {
				return total, werr
			}
			if n == len(w.buf) && len(w.buf) < chunkBytes {
				w.buf = make([]byte, 2*len(w.buf))
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Flush passes on the output that is ready, even below
// Options.BufferBytes. Output held back for a filter stays held.
func (w *Writer) Flush() error {
	if w.m.err != nil {
		return w.m.err
	}
	return w.flush(true)
}

func (w *Writer) flush(force bool) error {
	m := &w.m
	safe := m.safe()
	n := safe - m.outDone
	if n == 0 || !force && n < m.p.opts.BufferBytes {
		return nil
	}
	if _, err := w.dst.Write(m.out[m.outDone:safe]); err != nil {
		m.fail(err)
		return err
	}
	m.stats.BytesOut += int64(n)
	m.passed(safe)
	return nil
}

// Close checks that the body was one complete JSON text and every filter
// could be checked, then passes on the rest of the output. On an error
// nothing more is written. Close does not close the destination.
func (w *Writer) Close() error {
	if w.closed {
		return w.m.err
	}
	w.closed = true
	if err := w.m.finish(); err != nil {
		return err
	}
	return w.flush(true)
}

// Stats returns what the transform did so far.
func (w *Writer) Stats() Stats { return w.m.stats.clone() }

// Reader applies a Program to a body read from a source: the form
// httputil.ReverseProxy's ModifyResponse can put in place of a response
// body. A read error ends the response; ReverseProxy then aborts the
// connection, so that the client sees a truncated body, never an
// unredacted one.
type Reader struct {
	m       machine
	src     io.Reader
	buf     []byte
	done    bool // the body ended and was checked
	started bool // output was handed out
}

// NewReader returns a Reader of p applied to src.
func (p *Program) NewReader(src io.Reader) *Reader {
	r := &Reader{src: src}
	r.m.init(p)
	return r
}

// ready is how many bytes of output Read may hand out: none until
// Options.BufferBytes are ready or the body has ended, so that a body
// smaller than that is checked whole before anything of it leaves.
func (r *Reader) ready() int {
	m := &r.m
	n := m.safe() - m.outDone
	if r.started || r.done || n >= m.p.opts.BufferBytes {
		return n
	}
	return 0
}

// Read reads transformed output. At the end of the body it returns
// io.EOF if the body was a complete JSON text and every filter was
// checked, else the error; errors are those of Transform or of the
// source.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.m.err != nil {
			return 0, r.m.err
		}
		if n := r.ready(); n > 0 {
			m := &r.m
			n = copy(p, m.out[m.outDone:m.outDone+n])
			m.stats.BytesOut += int64(n)
			m.passed(m.outDone + n)
			r.started = true
			return n, nil
		}
		if r.done {
			return 0, io.EOF
		}
		r.fill()
	}
}

// Prefetch reads and transforms the body until the first output can be
// handed out (Options.BufferBytes of it, or all of a smaller body) and
// returns the error that stopped it, if any. Called in ModifyResponse,
// it lets an error become a clean error response, because nothing has
// been sent yet. A record refused by a filter on "$" (a
// single-record response) is always reported here, since the whole
// response is held until it is decided.
func (r *Reader) Prefetch() error {
	for r.m.err == nil && !r.done && r.ready() == 0 {
		r.fill()
	}
	return r.m.err
}

// Len reports, once the whole body has been read and checked (as
// Prefetch leaves a body smaller than Options.BufferBytes), how many bytes
// of output Read is still to hand out before io.EOF; ok is false while
// the body has not ended or after an error. A response can then state
// its Content-Length instead of being sent in chunks.
func (r *Reader) Len() (n int, ok bool) {
	if !r.done || r.m.err != nil {
		return 0, false
	}
	return r.m.safe() - r.m.outDone, true
}

func (r *Reader) fill() {
	if r.buf == nil {
		r.buf = getBuf()
	}
	n, err := r.src.Read(r.buf)
	if n > 0 {
		if r.m.feed(r.buf[:n]) != nil {
			return
		}
		if n == len(r.buf) && len(r.buf) < chunkBytes {
			r.buf = make([]byte, 2*len(r.buf))
		}
	}
	switch {
	case err == io.EOF:
		if r.m.finish() == nil {
			r.done = true
		}
	case err != nil:
		r.m.fail(err)
	}
}

// Release hands the Reader's buffers back for other Readers to use. The
// Reader must not be used after it; Stats may still be read before.
func (r *Reader) Release() {
	putBuf(r.buf)
	putBuf(r.m.out)
	r.buf, r.m.out = nil, nil
	r.m.err = errReleased
}

// errReleased is the error of a Reader used after Release.
var errReleased = errors.New("redact: reader used after Release")

// bufs holds 4 KiB buffers for Readers: a response's input and output
// buffers, so that a small body costs no allocation of them. A buffer
// that grew past chunkBytes for a large body is left to the collector.
var bufs = sync.Pool{New: func() any { b := make([]byte, 4<<10); return &b }}

func getBuf() []byte {
	b := *bufs.Get().(*[]byte)
	return b[:cap(b)]
}

func putBuf(b []byte) {
	if cap(b) < 4<<10 || cap(b) > chunkBytes {
		return
	}
	b = b[:cap(b)]
	bufs.Put(&b)
}

// Close closes the source when it is an io.Closer.
func (r *Reader) Close() error {
	if c, ok := r.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Stats returns what the transform did so far.
func (r *Reader) Stats() Stats { return r.m.stats.clone() }
