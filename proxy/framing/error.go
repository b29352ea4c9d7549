package framing

// Error reports a request that violates HTTP/1.x framing. Conn.Read returns
// it, as a *Error, for every read after the last byte that preceded the
// offending request head (or chunk line).
//
// An Error is deliberately not a net.Error: net/http answers a read error
// that is neither a timeout nor a network failure with "400 Bad Request"
// and closes the connection, which is exactly the treatment a smuggling
// attempt deserves.
type Error struct {
	// Reason names the violation. It is one of a small fixed set of phrases,
	// never a copy of client bytes, so it is safe to log and to use as a
	// metric label.
	Reason string
}

// Error implements the error interface.
func (e *Error) Error() string { return "framing: " + e.Reason }

// InHead reports whether the violation is in a request head (the request
// line or a header field), so that no handler saw the request, rather
// than in a chunked body, which its request's handler was reading.
func (e *Error) InHead() bool {
	switch e.Reason {
	case reasonBadChunkSize, reasonChunkSizeTooLarge, reasonBadChunkExt, reasonChunkLineTooLong, reasonBadChunkEnd, reasonTrailerTooLarge:
		return false
	}
	return true
}

// The reasons a stream is refused. Each names the rule it breaks; none may
// quote the offending bytes.
const (
	reasonLengthAndChunked  = "both Content-Length and Transfer-Encoding"
	reasonRepeatedLength    = "repeated Content-Length"
	reasonBadLength         = "invalid Content-Length"
	reasonRepeatedCoding    = "repeated Transfer-Encoding"
	reasonBadCoding         = "Transfer-Encoding other than chunked"
	reasonCodingInHTTP10    = "Transfer-Encoding in an HTTP/1.0 request"
	reasonRepeatedHost      = "repeated Host"
	reasonRepeatedUpgrade   = "repeated Upgrade"
	reasonBareLF            = "line not terminated by CRLF"
	reasonBareCR            = "bare CR"
	reasonObsFold           = "obsolete line folding"
	reasonSpaceBeforeColon  = "whitespace between field name and colon"
	reasonBadFieldName      = "invalid field name"
	reasonBadFieldValue     = "invalid character in field value"
	reasonBadRequestLine    = "malformed request line"
	reasonBadMethod         = "invalid method"
	reasonBadTarget         = "invalid request target"
	reasonBadVersion        = "unsupported HTTP version"
	reasonHeadTooLarge      = "request head too large"
	reasonBadChunkSize      = "invalid chunk size"
	reasonChunkSizeTooLarge = "chunk size too large"
	reasonBadChunkExt       = "invalid chunk extension"
	reasonChunkLineTooLong  = "chunk line too long"
	reasonBadChunkEnd       = "chunk data not followed by CRLF"
	reasonTrailerTooLarge   = "trailer section too large"
)
