package framing

import (
	"io"
	"strings"
	"testing"
)

// acceptCases are valid request streams that must pass through unchanged.
var acceptCases = []struct {
	name   string
	in     string
	limits Limits
}{
	{name: "GET", in: head0},
	{name: "typical browser GET", in: typicalGET},
	{name: "POST with Content-Length", in: "POST /a?b=c HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"},
	{name: "Content-Length zero", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"},
	{name: "Content-Length leading zeros", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\nhello"},
	{name: "Content-Length with OWS", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \t5 \r\n\r\nhello"},
	{name: "body is not parsed", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n\n\x00\r\nGET / \r\r\n" + head0},
	{name: "chunked", in: chunkedHead + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{name: "chunked upper-case hex and leading zeros", in: chunkedHead + "000A\r\n0123456789\r\n00\r\n\r\n"},
	{name: "chunked with 16 digits", in: chunkedHead + "0000000000000005\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk data with CRLF inside", in: chunkedHead + "4\r\n\r\n\r\n\r\n0\r\n\r\n"},
	{name: "chunk extensions", in: chunkedHead + "5;a=b;c\r\nhello\r\n5; d = \"e \\\" f\"\t;g=h\r\nworld\r\n0;last\r\n\r\n"},
	{name: "trailers", in: chunkedHead + "5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other:  d \r\n\r\n"},
	{name: "coding name in any case", in: "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  CHUNKED \r\n\r\n0\r\n\r\n"},
	{name: "HTTP/1.0 with Content-Length", in: "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi"},
	{name: "HTTP/1.0 without Host", in: "GET / HTTP/1.0\r\n\r\n"},
	{name: "pipelined", in: head0 + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + chunkedHead + "1\r\nx\r\n0\r\n\r\n" + head0},
	{name: "empty lines before request line", in: "\r\n\r\n" + head0},
	{name: "absolute-form target", in: "GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "asterisk-form target", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "authority-form target", in: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"},
	{name: "raw UTF-8 target", in: "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"},
	{name: "obs-text in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n"},
	{name: "empty value", in: "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n"},
	{name: "field name of every tchar", in: "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n"},
	{name: "Upgrade then other protocol", in: "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x85\x00\n\r\x00\nGET / HTTP/1.1\nTransfer-Encoding: x\r\n\r\n"},
	{name: "Upgrade after its body", in: "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\nabc\n\x00\xff"},
	{name: "Upgrade after chunked body", in: chunkedHead[:len(chunkedHead)-2] + "upgrade: x\r\n\r\n1\r\na\r\n0\r\n\r\n\n\x00\xff"},
	// An empty Upgrade is no upgrade (Header.Get returns ""), so what
	// follows is still parsed.
	{name: "empty Upgrade", in: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: \r\n\r\n" + head0},
	{name: "head exactly at limit", in: head0, limits: Limits{MaxHeadBytes: len(head0)}},
	{name: "chunk line exactly at limit", in: chunkedHead + "5;a=b\r\nhello\r\n0\r\n\r\n", limits: Limits{MaxChunkLineBytes: 7}},
	{name: "large head at default limit", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 64<<10-32) + "\r\n\r\n"},
}

// typicalGET is a browser-like request head of about 500 bytes.
const typicalGET = "GET /api/contacts/42?fields=name,email HTTP/1.1\r\n" +
	"Host: crm.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-GB,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://crm.example.com/contacts\r\n" +
	"Cookie: session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl; theme=dark\r\n" +
	"Sec-Fetch-Dest: empty\r\n" +
	"Sec-Fetch-Mode: cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func TestConnAccepts(t *testing.T) {
	for _, tt := range acceptCases {
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				c := pipe(t, tt.limits, d.split(tt.in)...)
				got, err := readAll(c, 512)
				if err != io.EOF {
					t.Errorf("Read(%q) error = %v, want EOF", tt.in, err)
				}
				if string(got) != tt.in {
					t.Errorf("Read(%q) released %q, want all of it", tt.in, got)
				}
			})
		}
	}
}
