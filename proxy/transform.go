package proxy

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/policy"
	"github.com/crmgate/crmgate/redact"
	"github.com/crmgate/crmgate/scope"
)

// The response transform (stage 9): a decision's redact and filter
// entries, compiled per request by decide, applied to the response body
// as it streams (see docs/redaction.md). Nothing the decision protects
// reaches the client: a body that cannot be transformed is refused
// before its first byte is sent, and one that fails later has its
// connection cut.

// compileTransform compiles a decision's redact and filter entries. An
// error means the decision cannot be enforced, and the request is denied.
func (g *Gateway) compileTransform(d policy.Decision, method string) (*redact.Program, error) {
	if len(d.Filter) > 0 && method != http.MethodGet && method != http.MethodHead {
		// On a write, a filter is a precondition on the stored record
		// (docs/policy.md), which only the CRM knows.
		return nil, fmt.Errorf("decision filters a %s, a precondition on the stored record that this gateway does not check", method)
	}
	rules := make([]redact.Rule, len(d.Redact))
	for i, r := range d.Redact {
		rules[i] = redact.Rule(r)
	}
	filters := make([]redact.Filter, len(d.Filter))
	for i, f := range d.Filter {
		filters[i] = redact.Filter(f)
	}
	p, err := redact.Compile(rules, filters, g.redactOpts)
	if err != nil {
		return nil, fmt.Errorf("decision's redact and filter entries cannot be enforced: %w", err)
	}
	return p, nil
}

// compiledTransform is a decision's compiled transform, kept in its Memo
// so that the decision's reuses (policy.Config.Reuse) do not compile it
// again.
type compiledTransform struct {
	g      *Gateway
	method string
	prog   *redact.Program
	err    error
}

// transformOf is compileTransform, once per evaluated decision.
func (g *Gateway) transformOf(d policy.Decision, method string) (*redact.Program, error) {
	if d.Memo != nil {
		if c, ok := d.Memo.Load().(*compiledTransform); ok && c.g == g && c.method == method {
			return c.prog, c.err
		}
	}
	p, err := g.compileTransform(d, method)
	if d.Memo != nil {
		d.Memo.Store(&compiledTransform{g: g, method: method, prog: p, err: err})
	}
	return p, err
}

// prepareTransformRequest asks the upstream for what the transform can
// read: a whole body (no Range: a part is not a JSON text), without a
// content coding, and never a bodiless 304 that would confirm a copy the
// client kept from before (the validators are the upstream's, of bytes
// the client never saw).
func prepareTransformRequest(h http.Header) {
	for _, k := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
		delete(h, k)
	}
	h["Accept-Encoding"] = identity
}

var identity = []string{"identity"}

// representationHeaders describe the upstream's bytes, which the client
// does not receive: its length, digests, validators and range support.
var representationHeaders = []string{
	"Content-Length", "Etag", "Last-Modified", "Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Accept-Ranges",
}

// transformError is a response the transform refused; the ErrorHandler
// renders it (404 for a record a filter refused, 502 otherwise).
type transformError struct {
	*HTTPError
}

func (g *Gateway) refuseResponse(s *scope.Scope, rd *scope.Redaction, err error) error {
	rd.Error = err.Error()
	e := &HTTPError{Status: http.StatusBadGateway, Outcome: "upstream_error", Reason: "redact", Err: err,
		Public: "proxy.error.response_unchecked"}
	rd.Result = scope.RedactRefused
	if errors.Is(err, redact.ErrRecordRefused) {
		// As if the record did not exist: a caller cannot tell a record
		// of someone else from a missing one.
		e = &HTTPError{Status: http.StatusNotFound, Outcome: "denied", Reason: "redact", Err: err, Public: "proxy.error.not_found"}
		rd.Result = scope.RedactRecordRefused
	}
	g.metrics.redactResponses.WithLabelValues(rd.Result).Inc()
	return &transformError{e}
}

// transformResponse makes the response one the decision allows: it
// drops the headers of the upstream's bytes, refuses what cannot be
// transformed, and wraps the body in the compiled program.
func (g *Gateway) transformResponse(res *http.Response, s *scope.Scope, f *forward) error {
	rd := &scope.Redaction{}
	s.Redaction = rd
	h := res.Header
	for _, k := range representationHeaders {
		delete(h, k)
	}
	switch {
	case res.StatusCode == http.StatusSwitchingProtocols:
		return g.refuseResponse(s, rd, errors.New("an upgraded connection cannot be redacted"))
	case res.StatusCode == http.StatusPartialContent || len(h["Content-Range"]) > 0:
		return g.refuseResponse(s, rd, errors.New("a partial response is not a JSON text"))
	case res.Request.Method == http.MethodHead || res.StatusCode == http.StatusNoContent ||
		res.StatusCode == http.StatusNotModified || res.StatusCode < 200 || res.ContentLength == 0:
		// Nothing to transform; a HEAD's coding is the one a GET through
		// the gateway would not have.
		delete(h, "Content-Encoding")
		rd.Result = scope.RedactNoBody
		g.metrics.redactResponses.WithLabelValues(rd.Result).Inc()
		return nil
	}
	if ct := h["Content-Type"]; len(ct) != 1 || !redact.Transformable(ct[0]) {
		if f.route.cfg.RedactUntransformable == UntransformablePass {
			rd.Result = scope.RedactPassed
			g.metrics.redactResponses.WithLabelValues(rd.Result).Inc()
			return nil
		}
		return g.refuseResponse(s, rd, fmt.Errorf("content type %q cannot be redacted", strings.Join(ct, ", ")))
	}
	body, err := decodeBody(h, res.Body)
	if err != nil {
		return g.refuseResponse(s, rd, err)
	}
	delete(h, "Content-Encoding")
	r := f.transform.NewReader(body)
	if err := r.Prefetch(); err != nil {
		fillRedaction(rd, r.Stats(), f.redactions)
		r.Release()
		return g.refuseResponse(s, rd, err)
	}
	// res.Body stays the upstream's: ReverseProxy closes it.
	res.Body = &transformBody{ctx: res.Request.Context(), r: r, up: res.Body, g: g, s: s, rd: rd, rules: f.redactions}
	res.ContentLength = -1
	if n, ok := r.Len(); ok {
		// A body that was read whole states its length: it goes out with
		// its headers in one write, not chunked and flushed per chunk
		// (ReverseProxy flushes every write of a body of unknown length).
		res.ContentLength = int64(n)
		h["Content-Length"] = []string{strconv.Itoa(n)}
	}
	return nil
}

// transformBody is the transformed body. At Close it records what the
// transform did; a read error ends the body, and ReverseProxy then aborts
// the client connection rather than end the response normally.
type transformBody struct {
	ctx   context.Context
	r     *redact.Reader
	up    io.Closer
	g     *Gateway
	s     *scope.Scope
	rd    *scope.Redaction
	rules []policy.Redaction
	err   error
	eof   bool
	done  bool
}

func (b *transformBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && b.err == nil:
		b.err = err
	}
	return n, err
}

func (b *transformBody) Close() error {
	if !b.done {
		b.done = true
		rd := b.rd
		st := b.r.Stats()
		fillRedaction(rd, st, b.rules)
		rd.Result = scope.RedactApplied
		switch {
		case b.err != nil:
			rd.Result, rd.Error = scope.RedactAborted, b.err.Error()
			b.g.log.LogAttrs(b.ctx, slog.LevelWarn, "response transform failed after the response began; connection aborted",
				slog.String("request_id", b.s.ID), slog.String("error", rd.Error))
		case !b.eof:
			rd.Result, rd.Error = scope.RedactAborted, "the response ended before its body did"
		}
		m := b.g.metrics
		m.redactResponses.WithLabelValues(rd.Result).Inc()
		n := 0
		for _, v := range st.Redacted {
			n += v
		}
		m.redactValues.Add(float64(n))
		m.redactRows.WithLabelValues("kept").Add(float64(st.RowsKept))
		m.redactRows.WithLabelValues("dropped").Add(float64(st.RowsDropped))
		b.r.Release()
	}
	return b.up.Close()
}

// decodeBody undoes a gzip or deflate content coding, which an upstream
// may apply although the gateway asked for none; other codings cannot be
// read and are refused.
func decodeBody(h http.Header, body io.Reader) (io.Reader, error) {
	var codings []string
	for _, v := range h["Content-Encoding"] {
		for _, c := range strings.Split(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return body, nil
	case len(codings) > 1:
		return nil, fmt.Errorf("content codings %q cannot be decoded", codings)
	}
	switch codings[0] {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		return zr, nil
	case "deflate":
		// RFC 9110 §8.4.1.2: the zlib format (RFC 1950); some servers
		// send a raw deflate stream (RFC 1951) instead.
		br := bufio.NewReader(body)
		if b, err := br.Peek(2); err == nil && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, fmt.Errorf("deflate body: %w", err)
			}
			return zr, nil
		}
		return flate.NewReader(br), nil
	}
	return nil, fmt.Errorf("content coding %q cannot be decoded", codings[0])
}

// fillRedaction copies a transform's statistics into the request scope.
func fillRedaction(rd *scope.Redaction, st redact.Stats, rules []policy.Redaction) {
	rd.Rules = make([]scope.RedactedRule, len(rules))
	for i, r := range rules {
		rd.Rules[i] = scope.RedactedRule{Path: r.Path, Action: r.Action}
		if i < len(st.Redacted) {
			rd.Rules[i].Values = st.Redacted[i]
		}
	}
	rd.RowsKept, rd.RowsDropped = st.RowsKept, st.RowsDropped
	rd.BytesIn, rd.BytesOut = st.BytesIn, st.BytesOut
}
