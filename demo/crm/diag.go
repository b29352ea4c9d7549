package crm

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// whoamiBody is what /api/whoami reports: the request exactly as it reached
// the CRM, after everything the gateway did to it.
type whoamiBody struct {
	// User is the first identity header value, or "anonymous".
	User string `json:"user"`
	// Roles is the first roles header value, verbatim.
	Roles string `json:"roles"`
	// Headers holds every value of every header, so a duplicated identity
	// header (one from the client, one from the gateway) shows up.
	Headers       http.Header         `json:"headers"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	RawPath       string              `json:"raw_path"`
	RequestURI    string              `json:"request_uri"`
	Query         map[string][]string `json:"query"`
	RawQuery      string              `json:"raw_query"`
	RemoteAddr    string              `json:"remote_addr"`
	Host          string              `json:"host"`
	Proto         string              `json:"proto"`
	ContentLength int64               `json:"content_length"`
}

// whoami answers any method on /api/whoami and everything below it.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	query := r.URL.Query()
	if query == nil {
		query = map[string][]string{}
	}
	headers := r.Header.Clone()
	if headers == nil {
		headers = http.Header{}
	}
	writeJSON(w, http.StatusOK, whoamiBody{
		User:          s.user(r),
		Roles:         r.Header.Get(s.cfg.RolesHeader),
		Headers:       headers,
		Method:        r.Method,
		Path:          r.URL.Path,
		RawPath:       r.URL.RawPath,
		RequestURI:    r.RequestURI,
		Query:         query,
		RawQuery:      r.URL.RawQuery,
		RemoteAddr:    r.RemoteAddr,
		Host:          r.Host,
		Proto:         r.Proto,
		ContentLength: r.ContentLength,
	})
	return nil
}

// echo streams the request body back as it arrives, with the same
// Content-Type, and reports the byte count in the X-Received-Bytes trailer
// because it is only known at the end. There is no size limit: it exists to
// test the gateway's upload limits and streaming.
func (s *Server) echo(w http.ResponseWriter, r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Trailer", "X-Received-Bytes")
	rc := http.NewResponseController(w)
	// HTTP/1.x servers stop reading a request body once the response
	// starts unless asked not to; HTTP/2 is always full duplex and reports
	// ErrNotSupported, which is fine.
	_ = rc.EnableFullDuplex()

	// Nothing is written before the first read, so a client sending
	// "Expect: 100-continue" gets its 100 first.
	var n int64
	buf := make([]byte, 32<<10)
	var err error
	for {
		var k int
		k, err = r.Body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
			if ferr := rc.Flush(); ferr != nil {
				err = ferr
				break
			}
		}
		if err != nil {
			break
		}
	}
	if err != io.EOF {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "crm echo aborted", slog.Int64("bytes", n), slog.Any("error", err))
	}
	w.Header().Set("X-Received-Bytes", strconv.FormatInt(n, 10))
	return nil
}

// maxSlow bounds /api/slow so a test cannot park a handler forever.
const maxSlow = 60 * time.Second

// slow sleeps ?ms= milliseconds (default 1000, at most 60 s) before
// answering, and gives up as soon as the client goes away.
func (s *Server) slow(w http.ResponseWriter, r *http.Request) error {
	d, err := slowDuration(r.URL.Query().Get("ms"))
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "crm slow request abandoned by client")
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]int64{"slept_ms": d.Milliseconds()})
	return nil
}

// slowDuration parses ?ms=: empty means one second, more than maxSlow is
// clamped to it.
func slowDuration(v string) (time.Duration, error) {
	if v == "" {
		return time.Second, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, badRequest("ms must be a non-negative integer")
	}
	return time.Duration(min(ms, maxSlow.Milliseconds())) * time.Millisecond, nil
}

// healthz is the liveness probe: plain text, no data access.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}
