package framing

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// readThrough reads c to the end with a buffer of size n, as net/http's
// bufio.Reader or io.Copy would.
func readThrough(b *testing.B, c io.Reader, buf []byte) {
	for {
		_, err := c.Read(buf)
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchStream compares reading stream through a Conn with reading it from
// the plain conn, each wrapped conn handing out reads of up to readSize
// bytes.
func benchStream(b *testing.B, stream []byte, readSize, bufSize int) {
	buf := make([]byte, bufSize)
	for _, wrap := range []struct {
		name string
		conn func(net.Conn) io.Reader
	}{
		{"framing", func(c net.Conn) io.Reader { return NewConn(c, Limits{}) }},
		{"plain", func(c net.Conn) io.Reader { return c }},
	} {
		b.Run(wrap.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				readThrough(b, wrap.conn(&memConn{data: stream, sizes: []int{readSize}}), buf)
			}
		})
	}
}

// BenchmarkKeepAliveGETs reads 100 pipelined browser-like GETs of about
// 500 bytes each, the common case for the head parser.
func BenchmarkKeepAliveGETs(b *testing.B) {
	stream := []byte(strings.Repeat(typicalGET, 100))
	benchStream(b, stream, 16<<10, 4<<10)
}

// BenchmarkChunkedUpload reads a 1 MiB upload in 8 KiB chunks, the common
// case for streaming a body.
func BenchmarkChunkedUpload(b *testing.B) {
	var s bytes.Buffer
	s.WriteString("POST /upload HTTP/1.1\r\nHost: crm.example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 512)
	for range (1 << 20) / len(chunk) {
		fmt.Fprintf(&s, "%x\r\n", len(chunk))
		s.Write(chunk)
		s.WriteString("\r\n")
	}
	s.WriteString("0\r\n\r\n")
	benchStream(b, s.Bytes(), 16<<10, 32<<10)
}
