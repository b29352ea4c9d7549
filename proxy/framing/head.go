package framing

// head is what a request head has shown so far about its framing.
type head struct {
	started  bool // the request line was seen
	http10   bool
	lengths  int // Content-Length field lines
	codings  int // Transfer-Encoding field lines
	hosts    int // Host field lines
	upgrades int // Upgrade field lines
	length   int64
	upgrade  bool
}

// requestLine checks "method SP request-target SP HTTP-version"
// (RFC 9112 §3) and returns a reason if it is malformed.
func (h *head) requestLine(line []byte) string {
	m := tokenLen(line)
	switch {
	case m == 0:
		return invalidByte(firstOr(line, 0), reasonBadMethod)
	case m == len(line), line[m] == '\t':
		return reasonBadRequestLine
	case line[m] != ' ':
		return invalidByte(line[m], reasonBadMethod)
	}
	rest := line[m+1:]
	t := targetLen(rest)
	switch {
	case t == 0:
		return invalidByte(firstOr(rest, 0), reasonBadTarget)
	case t == len(rest):
		return reasonBadRequestLine
	case rest[t] != ' ':
		return invalidByte(rest[t], reasonBadTarget)
	}
	// RFC 9112 §2.3: HTTP-version is case-sensitive. Only HTTP/1.0 and
	// HTTP/1.1 share this framing; anything else is not for this parser.
	switch string(rest[t+1:]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return reasonBadVersion
	}
	return ""
}

// field checks one header field line and records what it means for
// framing.
func (h *head) field(line []byte) string {
	name, value, reason := splitField(line)
	if reason != "" {
		return reason
	}
	switch fieldOf(name) {
	case fieldContentLength:
		// RFC 9110 §8.6 lets a recipient merge identical values, but a
		// front end that does not merge them sees a different message.
		if h.lengths++; h.lengths > 1 {
			return reasonRepeatedLength
		}
		n, ok := parseLength(value)
		if !ok {
			return reasonBadLength
		}
		h.length = n
	case fieldTransferEncoding:
		if h.codings++; h.codings > 1 {
			return reasonRepeatedCoding
		}
		if !isChunked(value) {
			return reasonBadCoding
		}
	case fieldHost:
		// RFC 9112 §3.2: a server must reject a request with more than
		// one Host field line; front ends disagree on which one wins.
		if h.hosts++; h.hosts > 1 {
			return reasonRepeatedHost
		}
	case fieldUpgrade:
		// The server decides on an upgrade by the field's value, and a
		// server that reads only one of several lines could refuse the
		// upgrade, and keep the connection, while this parser has
		// switched to passthrough. So there must be one line, and only
		// a non-empty value counts, as for Header.Get.
		if h.upgrades++; h.upgrades > 1 {
			return reasonRepeatedUpgrade
		}
		h.upgrade = len(value) > 0
	}
	return ""
}

// splitField checks a field line, "field-name ':' OWS field-value OWS"
// (RFC 9112 §5), and returns its name and its value without OWS.
func splitField(line []byte) (name, value []byte, reason string) {
	n := tokenLen(line)
	if n == len(line) {
		return nil, nil, reasonBadFieldName
	}
	if c := line[n]; c != ':' {
		if n > 0 && (c == ' ' || c == '\t') {
			// RFC 9112 §5.1: no whitespace is allowed between the
			// field name and colon, and a server must reject it.
			j := n
			for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
				j++
			}
			if j < len(line) && line[j] == ':' {
				return nil, nil, reasonSpaceBeforeColon
			}
		}
		return nil, nil, invalidByte(c, reasonBadFieldName)
	}
	if n == 0 {
		return nil, nil, reasonBadFieldName
	}
	v := line[n+1:]
	// RFC 9110 §5.5: CR, LF and NUL are never valid in a value, and other
	// controls are refused because recipients differ on them.
	if i := valueLen(v); i < len(v) {
		return nil, nil, invalidByte(v[i], reasonBadFieldValue)
	}
	return line[:n], trimOWS(v), ""
}
