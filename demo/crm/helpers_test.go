package crm

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testNow is the fixed clock every test server runs on, so created_at and
// updated_at of writes are exact.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// newTestServer returns a server with a fixed clock and discarded logs.
func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	return New(cfg, slog.New(slog.DiscardHandler), fixedClock)
}

// request is one call through the handler with a recorder.
type request struct {
	method, target string
	body           string
	header         http.Header
}

func (rq request) do(t testing.TB, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req := httptest.NewRequest(rq.method, rq.target, body)
	for k, v := range rq.header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// decode unmarshals a recorder's JSON body into a T.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	return v
}
