package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
	"time"
)

// h2Watch bounds the time an HTTP/2 client may take to finish a header
// block. The HTTP/2 server applies no read_header_timeout: a HEADERS frame
// without END_HEADERS followed by silence (or a drip of CONTINUATION frames)
// would hold the connection until the idle timeout. h2Watch follows the
// frame headers on the decrypted stream (RFC 9113 §4.1), passing every byte
// through unchanged, and closes the connection when a header block stays
// open longer than the limit.
type h2Watch struct {
	*tls.Conn
	limit time.Duration

	// Reader-owned parsing state.
	preface int     // bytes of the client preface still to skip
	hdr     [9]byte // a frame header being read
	hn      int
	payload uint32 // bytes of the current frame's payload still to skip

	mu    sync.Mutex
	timer *time.Timer
}

const (
	h2FrameHeaders      = 0x1
	h2FramePushPromise  = 0x5
	h2FrameContinuation = 0x9
	h2FlagEndHeaders    = 0x4
)

func newH2Watch(c *tls.Conn, limit time.Duration) *h2Watch {
	return &h2Watch{Conn: c, limit: limit, preface: len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")}
}

// ConnectionState lets the HTTP/2 server see the TLS state through the
// wrapper.
func (w *h2Watch) ConnectionState() tls.ConnectionState { return w.Conn.ConnectionState() }

func (w *h2Watch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.scan(p[:n])
	return n, err
}

func (w *h2Watch) scan(b []byte) {
	for len(b) > 0 {
		switch {
		case w.preface > 0:
			k := min(w.preface, len(b))
			w.preface -= k
			b = b[k:]
		case w.payload > 0:
			k := int(min(w.payload, uint32(len(b))))
			w.payload -= uint32(k)
			b = b[k:]
		default:
			k := copy(w.hdr[w.hn:], b)
			w.hn += k
			b = b[k:]
			if w.hn < len(w.hdr) {
				return
			}
			w.hn = 0
			length := uint32(w.hdr[0])<<16 | uint32(binary.BigEndian.Uint16(w.hdr[1:3]))
			typ, flags := w.hdr[3], w.hdr[4]
			w.payload = length
			switch typ {
			case h2FrameHeaders, h2FramePushPromise:
				if flags&h2FlagEndHeaders == 0 {
					w.arm()
				}
			case h2FrameContinuation:
				if flags&h2FlagEndHeaders != 0 {
					w.disarm()
				}
			}
		}
	}
}

func (w *h2Watch) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer == nil {
		w.timer = time.AfterFunc(w.limit, func() { _ = w.Conn.Close() })
	}
}

func (w *h2Watch) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}

func (w *h2Watch) Close() error {
	w.disarm()
	return w.Conn.Close()
}

var _ net.Conn = (*h2Watch)(nil)
