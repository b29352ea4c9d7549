package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/secret"
)

const token = "q8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0Ga8Ue2Io4Ak7+/="

func newTestServer(cfg Config) *Server {
	cfg.Defaults()
	return New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

func get(h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestEndpoints(t *testing.T) {
	s := newTestServer(Config{Token: secret.FromValue([]byte(token)), Pprof: true})
	s.AddCheck("store", func(context.Context) error { return nil })
	h := s.Handler()
	tests := []struct {
		name, method, path string
		hdr                []string
		want               int
		body               string
	}{
		{"healthz", "GET", "/healthz", nil, 200, "ok"},
		{"healthz HEAD", "HEAD", "/healthz", nil, 200, ""},
		{"healthz exact path", "GET", "/healthz/x", nil, 404, ""},
		{"healthz method", "POST", "/healthz", nil, 405, ""},
		{"healthz is not matched by user agent", "GET", "/", []string{"User-Agent", "kube-probe/1.30"}, 404, ""},
		{"readyz", "GET", "/readyz", nil, 200, `"ready":true`},
		{"metrics without token", "GET", "/metrics", nil, 401, ""},
		{"metrics wrong token", "GET", "/metrics", []string{"Authorization", "Bearer nope"}, 401, ""},
		{"metrics two tokens", "GET", "/metrics", []string{"Authorization", "Bearer " + token, "Authorization", "Bearer x"}, 401, ""},
		{"metrics with token", "GET", "/metrics", []string{"Authorization", "Bearer " + token}, 200, "go_"},
		{"pprof needs the token", "GET", "/debug/pprof/", nil, 401, ""},
		{"pprof with token", "GET", "/debug/pprof/", []string{"Authorization", "Bearer " + token}, 200, "goroutine"},
	}
	reg := s.gather.(*prometheus.Registry)
	reg.MustRegister(prometheus.NewGoCollector())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(h, tt.method, tt.path, tt.hdr...)
			if w.Code != tt.want || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, w.Code, w.Body, tt.want, tt.body)
			}
		})
	}
}

func TestReadyzFails(t *testing.T) {
	s := newTestServer(Config{})
	s.AddCheck("tls", func(context.Context) error { return errors.New("no certificate yet") })
	w := get(s.Handler(), "GET", "/readyz")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "no certificate yet") {
		t.Errorf("readyz = %d %s, want 503 naming the failing check", w.Code, w.Body)
	}
}

func TestPprofOffByDefault(t *testing.T) {
	if w := get(newTestServer(Config{}).Handler(), "GET", "/debug/pprof/"); w.Code != 404 {
		t.Errorf("pprof without pprof: true = %d, want 404", w.Code)
	}
}
