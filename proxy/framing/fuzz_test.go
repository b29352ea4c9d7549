package framing

import (
	"bytes"
	"io"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches every limit.
var fuzzLimits = Limits{MaxHeadBytes: 1024, MaxChunkLineBytes: 64}

// FuzzConn feeds arbitrary streams through a Conn, delivered in read sizes
// taken from sizes (each byte b is one read of up to b+1 bytes) and read
// with buffers of assorted sizes. The Conn must not panic or stall, must
// release only a prefix of its input within bounded memory, and must
// agree with net/http on where the requests it accepted end.
func FuzzConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, stream, sizes []byte) {
		deliver := make([]int, len(sizes))
		for i, s := range sizes {
			deliver[i] = int(s) + 1
		}
		c := NewConn(&memConn{data: stream, sizes: deliver}, fuzzLimits)
		bufs := [][]byte{make([]byte, 1), make([]byte, 3), make([]byte, 64), make([]byte, 4096)}

		var out []byte
		var err error
		for i := 0; err == nil; i++ {
			// Every Read returns a byte or an error; more reads than
			// bytes means one returned neither.
			if i > len(stream)+1 {
				t.Fatalf("%d reads for %d bytes: a Read made no progress", i, len(stream))
			}
			buf := bufs[i%len(bufs)]
			var n int
			n, err = c.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read(%d bytes) = %d", len(buf), n)
			}
			out = append(out, buf[:n]...)
		}
		if !bytes.HasPrefix(stream, out) {
			t.Fatalf("released %q, not a prefix of the input %q", out, stream)
		}
		if n := cap(c.p.buf); n > c.maxBuf {
			t.Fatalf("buffer grew to %d bytes, over the %d the limits allow", n, c.maxBuf)
		}
		if reasonOf(err) != "" {
			if n, again := c.Read(bufs[3]); n != 0 || again != err {
				t.Fatalf("Read after %v = %d, %v, want 0 and the same error", err, n, again)
			}
			return
		}
		if err != io.EOF {
			t.Fatalf("Read() error = %v, want EOF or a framing error", err)
		}

		// The whole stream was accepted and ends between requests: where
		// net/http reads it all, it must count the same requests.
		p := &c.p
		if len(out) != len(stream) || p.st != stHead || p.h.started || p.ok != p.w {
			return
		}
		reqs := readRequests(bytes.NewReader(stream))
		if reqs[len(reqs)-1].Err != io.EOF.Error() {
			return // net/http is stricter about something framing allows
		}
		if got := len(reqs) - 1; got != p.requests {
			t.Fatalf("net/http read %d requests from %q, the parser %d", got, stream, p.requests)
		}
	})
}
