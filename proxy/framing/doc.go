// Package framing guards HTTP/1.x request framing on a decrypted connection
// before net/http reads it.
//
// Go's HTTP/1 server is lenient where a load balancer in front of the
// gateway may be strict, or the other way round, and every such difference
// in where one request ends and the next begins is a request-smuggling
// desync (RFC 9112 §11.2). Conn sits between the TLS connection and
// http.Server, parses the byte stream as HTTP/1.x requests and releases
// only bytes whose framing it has validated. A request whose head is
// ambiguous or malformed never reaches net/http: the reader receives an
// *Error instead, which http.Server answers with "400 Bad Request" and a
// closed connection.
//
// The package owns message framing only: the request line, the syntax of
// field lines, Content-Length, Transfer-Encoding, chunked coding and the
// switch to a raw byte stream after a protocol upgrade. It does not judge
// methods, targets, hosts or field values beyond what framing needs; that
// is left to the server and to the gateway's request stages. It does not
// handle HTTP/2, which has its own framing and never passes through it.
package framing
