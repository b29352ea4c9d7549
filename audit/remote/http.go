package remote

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/crmgate/crmgate/fielderr"
)

// HTTP ships batches of events as POST requests to a collector. The body
// is a prefix, each event rendered by a line template, separators between
// lines, and a suffix (see HTTPConfig); ndjson and json_array are
// predefined templates. A batch whose body would exceed max_batch_bytes
// goes out as several POSTs, one after the other, in order.
//
// A 2xx answer is success. Anything else is a *StatusError (with the
// collector's Retry-After, see RetryAfterError), and a network error is
// returned as it is; either way the batch should be retried later, and the
// POSTs of it that had succeeded are then sent again (dedupe on
// metadata.uid; with Elastic, {{uid_string}} as the document _id does it).
// Redirects are not followed. Write is safe for concurrent use, but only
// one Write at a time keeps batches in order.
type HTTP struct {
	name        string
	url         string
	origin      string // scheme://host, for messages
	client      *http.Client
	transport   *http.Transport
	header      http.Header
	body        bodyTemplate
	gzip        bool
	max         int
	log         *slog.Logger
	now         func() time.Time
	closed      atomic.Bool
	gzipWriters sync.Pool
}

var _ interface {
	Write(context.Context, [][]byte) error
	Name() string
	Close() error
} = (*HTTP)(nil)

// NewHTTP builds the sink from a validated configuration: it compiles the
// template and reads the TLS files but connects nowhere until the first
// Write. A nil logger discards.
func NewHTTP(cfg HTTPConfig, logger *slog.Logger) (*HTTP, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return nil, fielderr.New("url", "%q is not an http(s) URL with a host", redactURL(cfg.URL))
	}
	bt, err := newBodyTemplate(cfg.Format, cfg.Template)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Content-Type", cfg.ContentType)
	h.Set("User-Agent", "crmgate-audit")
	for i, hc := range cfg.Headers {
		v := hc.Value
		if !hc.Secret.IsZero() {
			s := hc.Secret.Value()
			if s == nil {
				return nil, fielderr.New(fmt.Sprintf("headers[%d].secret", i), "secret %s is not resolved", hc.Secret)
			}
			v = hc.SecretPrefix + string(s)
		}
		h.Set(hc.Name, v)
	}
	if cfg.Gzip {
		h.Set("Content-Encoding", "gzip")
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	if u.Scheme == "https" {
		tc, err := cfg.TLS.build()
		if err != nil {
			return nil, fielderr.Prefix("tls", err)
		}
		tr.TLSClientConfig = tc
	}
	name := cfg.Name
	if name == "" {
		name = "http:" + u.Scheme + "://" + u.Host
	}
	return &HTTP{
		name:      name,
		url:       cfg.URL,
		origin:    u.Scheme + "://" + u.Host,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.Timeout,
			// A redirect would carry the token to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		header: h,
		body:   bt,
		gzip:   cfg.Gzip,
		max:    cfg.MaxBatchBytes,
		log:    logger.With("sink", name),
		now:    time.Now,
	}, nil
}

// Name returns the configured name, by default http:SCHEME://HOST.
func (s *HTTP) Name() string { return s.name }

// Write renders every event, checks that each fits max_batch_bytes alone,
// then POSTs the batch in as few bodies as fit, in order, stopping at the
// first failure.
func (s *HTTP) Write(ctx context.Context, batch [][]byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if len(batch) == 0 {
		return nil
	}
	// Render all lines first: nothing is sent unless every event can be.
	var lines []byte
	ends := make([]int, len(batch))
	frame := len(s.body.prefix) + len(s.body.suffix)
	for i, ev := range batch {
		m, err := parseEvent(ev)
		if err != nil {
			return &EventError{Index: i, Size: len(ev), Err: err}
		}
		start := len(lines)
		lines = s.body.line.appendLine(lines, oneLine(ev), m, s.now)
		if n := len(lines) - start + frame; n > s.max {
			return &EventError{Index: i, Size: n, Err: fmt.Errorf("%w: a body of this event alone is %d bytes, max_batch_bytes is %d", ErrEventTooLarge, n, s.max)}
		}
		ends[i] = len(lines)
	}
	lineLen := func(i int) int {
		if i == 0 {
			return ends[0]
		}
		return ends[i] - ends[i-1]
	}
	var body bytes.Buffer
	first, size := 0, frame // the chunk's first line, its body size so far
	for i := range batch {
		n := lineLen(i)
		if i > first {
			n += len(s.body.sep)
		}
		if i > first && size+n > s.max {
			if err := s.post(ctx, &body, lines, ends, first, i); err != nil {
				return err
			}
			first, size, n = i, frame, lineLen(i)
		}
		size += n
	}
	return s.post(ctx, &body, lines, ends, first, len(batch))
}

// post sends lines [from, to) as one body.
func (s *HTTP) post(ctx context.Context, body *bytes.Buffer, lines []byte, ends []int, from, to int) error {
	body.Reset()
	var w io.Writer = body
	var zw *gzip.Writer
	if s.gzip {
		zw, _ = s.gzipWriters.Get().(*gzip.Writer)
		if zw == nil {
			zw = gzip.NewWriter(body)
		} else {
			zw.Reset(body)
		}
		w = zw
	}
	io.WriteString(w, s.body.prefix)
	for i := from; i < to; i++ {
		if i > from {
			io.WriteString(w, s.body.sep)
		}
		lo := 0
		if i > 0 {
			lo = ends[i-1]
		}
		w.Write(lines[lo:ends[i]])
	}
	io.WriteString(w, s.body.suffix)
	if zw != nil {
		zw.Close()
		s.gzipWriters.Put(zw)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	req.Header = s.header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, whose query may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: POST %s: %w", s.name, s.origin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drained so the connection is reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	se := &StatusError{
		URL:        s.origin,
		StatusCode: resp.StatusCode,
		Body:       printable(snippet),
		Retry:      parseRetryAfter(resp.Header.Get("Retry-After"), s.now()),
	}
	switch {
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		s.log.Error("audit collector refused the body as too large; lower max_batch_bytes", "status", se.StatusCode, "bytes", body.Len(), "body", se.Body)
	case se.Config():
		s.log.Error("audit collector refused the request: check the sink's url, headers, format and content_type", "status", se.StatusCode, "body", se.Body)
	default:
		s.log.Warn("audit collector failed; the batch will be retried", "status", se.StatusCode, "retry_after", se.Retry, "body", se.Body)
	}
	return se
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
// anything else, and a time in the past, is zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(365*24*3600))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// printable makes a response snippet safe for one log line.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

// Close releases idle connections; later Writes return ErrClosed.
func (s *HTTP) Close() error {
	s.closed.Store(true)
	s.transport.CloseIdleConnections()
	return nil
}
