package framing

import (
	"strings"
	"testing"
)

// head0 is a complete, valid request head without a body.
const head0 = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"

// refuseCases are streams that must be cut off: Read releases out, and for
// a refused head up to refusedHeadBytes more, then reports reason. Every
// case is an attack class or a parser difference a front end could
// exploit.
var refuseCases = []struct {
	name   string
	in     string
	out    string // released before the refused head or chunk line
	reason string
	limits Limits
	body   bool // the violation is inside a body
}{
	// Content-Length and Transfer-Encoding (RFC 9112 §6.1, §6.3).
	{name: "CL.TE smuggling", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", reason: reasonLengthAndChunked},
	{name: "TE.CL smuggling", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", reason: reasonLengthAndChunked},
	{name: "CL.TE after a good request", in: head0 + "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", out: head0, reason: reasonLengthAndChunked},
	{name: "identical Content-Length twice", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", reason: reasonRepeatedLength},
	{name: "different Content-Length twice", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\nhello", reason: reasonRepeatedLength},
	{name: "Content-Length list", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", reason: reasonBadLength},
	{name: "Content-Length plus sign", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", reason: reasonBadLength},
	{name: "Content-Length negative", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", reason: reasonBadLength},
	{name: "Content-Length inner space", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\nhellohello", reason: reasonBadLength},
	{name: "Content-Length hex", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", reason: reasonBadLength},
	{name: "Content-Length overflow", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", reason: reasonBadLength},
	{name: "Content-Length empty", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", reason: reasonBadLength},
	{name: "Content-Length underscore", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", reason: reasonBadLength},
	{name: "TE chunked, identity", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE gzip, chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE identity", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", reason: reasonBadCoding},
	{name: "TE xchunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE chunked with parameter", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;foo\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE quoted chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE empty", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", reason: reasonBadCoding},
	{name: "TE non-breaking space", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n", reason: reasonBadCoding},
	{name: "TE vertical tab", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \vchunked\r\n\r\n0\r\n\r\n", reason: reasonBadFieldValue},
	{name: "TE twice", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reason: reasonRepeatedCoding},
	{name: "TE chunked then identity field", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", reason: reasonRepeatedCoding},
	{name: "TE in HTTP/1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reason: reasonCodingInHTTP10},
	{name: "TE and CL in HTTP/1.0", in: "POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reason: reasonCodingInHTTP10},
	{name: "repeated Upgrade", in: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade:\r\nUpgrade: websocket\r\n\r\n", reason: reasonRepeatedUpgrade},
	{name: "bad head after empty Upgrade", in: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade:\r\n\r\nGET / HTTP/1.1\nHost: a\r\n\r\n", out: "GET / HTTP/1.1\r\nHost: a\r\nUpgrade:\r\n\r\n", reason: reasonBareLF},
	{name: "repeated Host", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", reason: reasonRepeatedHost},

	// Line terminators (RFC 9112 §2.2).
	{name: "bare LF after request line", in: "GET / HTTP/1.1\nHost: a\r\n\r\n", reason: reasonBareLF},
	{name: "bare LF after field", in: "GET / HTTP/1.1\r\nHost: a\nContent-Length: 5\r\n\r\n", reason: reasonBareLF},
	{name: "bare LF ends head", in: "GET / HTTP/1.1\r\nHost: a\r\n\n", reason: reasonBareLF},
	{name: "bare LF before request line", in: "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBareLF},
	{name: "bare LF in second request", in: head0 + "GET / HTTP/1.1\r\nHost: a\n\n", out: head0, reason: reasonBareLF},
	{name: "bare CR terminates field", in: "GET / HTTP/1.1\r\nHost: a\rContent-Length: 5\r\n\r\n", reason: reasonBareCR},
	{name: "bare CR in request line", in: "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBareCR},
	{name: "bare CR before request line", in: "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBareCR},
	{name: "CR CR LF ends head", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", reason: reasonBareCR},
	{body: true, name: "bare LF after chunk size", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", out: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", reason: reasonBareLF},
	{body: true, name: "bare CR in chunk line", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r;a\r\nhello\r\n0\r\n\r\n", out: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", reason: reasonBareCR},
	{body: true, name: "bare LF ends trailers", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", out: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", reason: reasonBareLF},
	{body: true, name: "bare LF after trailer", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n", out: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", reason: reasonBareLF},

	// Field lines (RFC 9112 §5).
	{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", reason: reasonObsFold},
	{name: "obs-fold with tab", in: "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", reason: reasonObsFold},
	{name: "whitespace before first field", in: "GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n", reason: reasonObsFold},
	{name: "space before colon", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello", reason: reasonSpaceBeforeColon},
	{name: "tab before colon", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", reason: reasonSpaceBeforeColon},
	{name: "space inside name", in: "POST / HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\nhello", reason: reasonBadFieldName},
	{name: "empty field name", in: "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", reason: reasonBadFieldName},
	{name: "non-token field name", in: "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", reason: reasonBadFieldName},
	{name: "NUL in field name", in: "GET / HTTP/1.1\r\nHost: a\r\nContent-Length\x00: 5\r\n\r\n", reason: reasonBadFieldName},
	{name: "field without colon", in: "GET / HTTP/1.1\r\nHost a\r\n\r\n", reason: reasonBadFieldName},
	{name: "NUL in field value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x00c\r\n\r\n", reason: reasonBadFieldValue},
	{name: "control in field value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x01c\r\n\r\n", reason: reasonBadFieldValue},
	{name: "DEL in field value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: b\x7fc\r\n\r\n", reason: reasonBadFieldValue},
	{name: "escape in field value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: \x1b[31m\r\n\r\n", reason: reasonBadFieldValue},

	// Request line (RFC 9112 §3).
	{name: "lower-case version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", reason: reasonBadVersion},
	{name: "HTTP/2.0 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", reason: reasonBadVersion},
	{name: "HTTP/1.2", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n", reason: reasonBadVersion},
	{name: "HTTP/1.10", in: "GET / HTTP/1.10\r\nHost: a\r\n\r\n", reason: reasonBadVersion},
	{name: "HTTP/0.9 simple request", in: "GET /\r\n", reason: reasonBadRequestLine},
	{name: "missing target", in: "GET HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadRequestLine},
	{name: "method only", in: "GET\r\n\r\n", reason: reasonBadRequestLine},
	{name: "trailing space", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", reason: reasonBadVersion},
	{name: "double space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadTarget},
	{name: "tab separator", in: "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadRequestLine},
	{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadVersion},
	{name: "NUL in target", in: "GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadTarget},
	{name: "tab in target", in: "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadTarget},
	{name: "DEL in target", in: "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadTarget},
	{name: "non-token method", in: "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadMethod},
	{name: "NUL in method", in: "G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadMethod},
	{name: "empty method", in: " / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonBadMethod},
	{name: "TLS record on plaintext", in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", reason: reasonBadMethod},

	// Chunked coding (RFC 9112 §7.1).
	{body: true, name: "non-hex chunk size", in: chunkedHead + "g\r\n", out: chunkedHead, reason: reasonBadChunkSize},
	{body: true, name: "empty chunk size", in: chunkedHead + "\r\n", out: chunkedHead, reason: reasonBadChunkSize},
	{body: true, name: "signed chunk size", in: chunkedHead + "+5\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkSize},
	{body: true, name: "hex prefix chunk size", in: chunkedHead + "0x5\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "space before chunk size", in: chunkedHead + " 5\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkSize},
	{body: true, name: "chunk size with 17 digits", in: chunkedHead + "00000000000000005\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonChunkSizeTooLarge},
	{body: true, name: "chunk size overflow", in: chunkedHead + "8000000000000000\r\n", out: chunkedHead, reason: reasonChunkSizeTooLarge},
	{body: true, name: "space before chunk extension", in: chunkedHead + "5 ;a=b\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk size with trailing space", in: chunkedHead + "5 \r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk extension without name", in: chunkedHead + "5;\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk extension unterminated quote", in: chunkedHead + "5;a=\"b\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk extension control", in: chunkedHead + "5;a=b\x00\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk extension empty value", in: chunkedHead + "5;a=\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonBadChunkExt},
	{body: true, name: "chunk line too long", in: chunkedHead + "5;a=" + strings.Repeat("b", 5000) + "\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonChunkLineTooLong},
	{body: true, name: "chunk data too long", in: chunkedHead + "5\r\nhelloX\r\n0\r\n\r\n", out: chunkedHead + "5\r\nhello", reason: reasonBadChunkEnd},
	{body: true, name: "chunk data ends in bare LF", in: chunkedHead + "5\r\nhello\n0\r\n\r\n", out: chunkedHead + "5\r\nhello", reason: reasonBadChunkEnd},
	{body: true, name: "chunk data ends in bare CR", in: chunkedHead + "5\r\nhello\r0\r\n\r\n", out: chunkedHead + "5\r\nhello", reason: reasonBadChunkEnd},
	{body: true, name: "bad chunk in an Upgrade request", in: "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", out: "POST / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n", reason: reasonBareLF},
	{body: true, name: "trailer obs-fold", in: chunkedHead + "0\r\nX: y\r\n z\r\n\r\n", out: chunkedHead + "0\r\nX: y\r\n", reason: reasonObsFold},
	{body: true, name: "trailer bad name", in: chunkedHead + "0\r\nX y: z\r\n\r\n", out: chunkedHead + "0\r\n", reason: reasonBadFieldName},
	{body: true, name: "trailer NUL", in: chunkedHead + "0\r\nX: \x00\r\n\r\n", out: chunkedHead + "0\r\n", reason: reasonBadFieldValue},
	{body: true, name: "trailer section too large", in: chunkedHead + "0\r\n" + strings.Repeat("X: y\r\n", 20) + "\r\n", out: chunkedHead + "0\r\n" + strings.Repeat("X: y\r\n", 13), reason: reasonTrailerTooLarge, limits: Limits{MaxHeadBytes: 80}},

	// Limits.
	{name: "head too large", in: "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 100) + "\r\n\r\n", reason: reasonHeadTooLarge, limits: Limits{MaxHeadBytes: 100}},
	{name: "head one byte over", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", reason: reasonHeadTooLarge, limits: Limits{MaxHeadBytes: len(head0) - 1}},
	{name: "head without end", in: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 200), reason: reasonHeadTooLarge, limits: Limits{MaxHeadBytes: 100}},
	{name: "endless empty lines", in: strings.Repeat("\r\n", 100), reason: reasonHeadTooLarge, limits: Limits{MaxHeadBytes: 100}},
	{body: true, name: "chunk line over custom limit", in: chunkedHead + "5;a=bbbbbbbbbb\r\nhello\r\n0\r\n\r\n", out: chunkedHead, reason: reasonChunkLineTooLong, limits: Limits{MaxChunkLineBytes: 8}},
}

const chunkedHead = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

func TestConnRefuses(t *testing.T) {
	for _, tt := range refuseCases {
		for _, d := range deliveries {
			t.Run(tt.name+"/"+d.name, func(t *testing.T) {
				c := pipe(t, tt.limits, d.split(tt.in)...)
				got, err := readAll(c, 512)
				want := tt.out
				if !tt.body {
					// The first bytes of the refused head: all
					// refusedHeadBytes when it arrived whole, else as
					// many as had arrived when it failed.
					extra := min(refusedHeadBytes, len(tt.in)-len(tt.out))
					if d.name == "bytewise" {
						extra = min(extra, max(len(got)-len(tt.out), 1))
					}
					want = tt.in[:len(tt.out)+extra]
				}
				if string(got) != want {
					t.Errorf("Read(%q) released %q, want %q", tt.in, got, want)
				}
				if r := reasonOf(err); r != tt.reason {
					t.Fatalf("Read(%q) error = %v, want reason %q", tt.in, err, tt.reason)
				}
				// The error is sticky: nothing more is ever released.
				n, again := c.Read(make([]byte, 64))
				if n != 0 || again != err {
					t.Errorf("Read after %v = %d, %v, want 0, the same error", err, n, again)
				}
			})
		}
	}
}
