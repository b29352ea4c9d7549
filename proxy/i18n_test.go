package proxy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/scope"
)

// acceptLanguages are the Accept-Language values every answer is tried
// with, and the language each must be in.
var acceptLanguages = []struct {
	name, header, want string
}{
	{"absent", "", i18n.English},
	{"English", "en-US,en;q=0.9", i18n.English},
	{"Simplified Chinese", "zh-CN,zh;q=0.9,en;q=0.8", i18n.SimplifiedChinese},
	{"Traditional Chinese falls back", "zh-TW", i18n.English},
	{"hostile, a megabyte", strings.Repeat("zh-Hans", 1<<17), i18n.English},
	{"hostile, many q-values", strings.Repeat("x;q=0.1,", 1<<16) + "zh", i18n.English},
	{"hostile, malformed", "zh;;q=\x00,\xff", i18n.English},
}

// The gateway's error answers are in the language Accept-Language asks
// for: the HTML page whole, problem+json's detail (its title stays the
// English reason phrase); the request id and Retry-After's seconds show
// in both languages.
func TestErrorLanguage(t *testing.T) {
	tests := []struct {
		name   string
		err    *HTTPError
		en, zh string
		// enPage and zhPage are texts only the HTML page shows.
		enPage, zhPage []string
	}{
		{"forbidden", &HTTPError{Status: http.StatusForbidden, Public: "proxy.error.forbidden"},
			"You are not allowed to do this.", "您无权执行此操作。",
			[]string{"<title>403 Forbidden</title>"}, []string{"<title>403 禁止访问</title>"}},
		{"rate limited", &HTTPError{Status: http.StatusTooManyRequests, Public: "proxy.error.rate_limited", Header: http.Header{"Retry-After": {"17"}}},
			"Too many requests. Try again later.", "请求过多，请稍后再试。",
			[]string{"<h1>429 Too Many Requests</h1>", "You can try again in 17 second(s)."}, []string{"<h1>429 请求过多</h1>", "请在 17 秒后重试。"}},
		{"refused credentials", tooManyFailures(90 * time.Second),
			"Too many refused credentials from this address. Try again later.", "来自此地址的被拒凭据过多，请稍后再试。",
			[]string{"You can try again in 90 second(s)."}, []string{"请在 90 秒后重试。"}},
		{"repeated header", &HTTPError{Status: http.StatusBadRequest, Public: "proxy.error.header_repeated", Args: []any{"Content-Type"}},
			"The header Content-Type must not be repeated.", "请求头 Content-Type 不得重复。", nil, nil},
		{"upstream timeout", &HTTPError{Status: http.StatusGatewayTimeout, Public: "proxy.error.upstream_timeout"},
			"The service did not answer in time.", "服务未能及时响应。",
			[]string{"504 Gateway Timeout"}, []string{"504 网关超时"}},
		{"text that is no message id", &HTTPError{Status: http.StatusBadGateway, Public: "Plain words."},
			"Plain words.", "Plain words.", nil, nil},
	}
	for _, tt := range tests {
		for _, al := range acceptLanguages {
			for _, html := range []bool{false, true} {
				name := tt.name + "/" + al.name + "/problem"
				if html {
					name = tt.name + "/" + al.name + "/page"
				}
				t.Run(name, func(t *testing.T) {
					r := httptest.NewRequest(http.MethodGet, "https://crm.example.com/x", nil)
					if html {
						r.Header.Set("Accept", "text/html,application/xhtml+xml")
					}
					if al.header != "" {
						r.Header.Set("Accept-Language", al.header)
					}
					r = r.WithContext(scope.With(r.Context(), &scope.Scope{ID: "req-4711"}))
					w := httptest.NewRecorder()
					writeError(w, r, tt.err)
					if w.Code != tt.err.Status {
						t.Errorf("status %d, want %d", w.Code, tt.err.Status)
					}
					if got := w.Header().Get("Content-Language"); got != al.want {
						t.Errorf("Content-Language = %q, want %q", got, al.want)
					}
					if got := w.Header().Values("Vary"); len(got) != 1 || got[0] != "Accept-Language" {
						t.Errorf("Vary = %q, want Accept-Language", got)
					}
					detail, page, id := tt.en, tt.enPage, "Request id: <code>req-4711</code>"
					if al.want == i18n.SimplifiedChinese {
						detail, page, id = tt.zh, tt.zhPage, "请求编号：<code>req-4711</code>"
					}
					body := w.Body.String()
					if !html {
						var p problem
						if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
							t.Fatalf("%v: %s", err, body)
						}
						if p.Detail != detail || p.Title != http.StatusText(tt.err.Status) || p.RequestID != "req-4711" {
							t.Errorf("problem %+v, want detail %q and title %q", p, detail, http.StatusText(tt.err.Status))
						}
						return
					}
					for _, s := range append([]string{`<html lang="` + al.want + `">`, "<p>" + detail + "</p>", id}, page...) {
						if !strings.Contains(body, s) {
							t.Errorf("page lacks %q:\n%s", s, body)
						}
					}
				})
			}
		}
	}
}

// Through the gateway: refusals of the intake and the router are in the
// language asked for.
func TestGatewayErrorLanguage(t *testing.T) {
	g := testGateway(t, echoUpstream(t).URL, nil)
	tests := []struct {
		name, target, peer string
		hdr                []string
		status             int
		en, zh             string
	}{
		{"no route", "/nothing", "", nil, http.StatusNotFound, "No such resource.", "资源不存在。"},
		{"network denied", "/api/office", "198.51.100.7:1", nil, http.StatusForbidden, "Access from your network is not allowed.", "不允许从您所在的网络访问。"},
		{"repeated header", "/api/contacts", "", []string{"Content-Type", "a/b", "Content-Type", "c/d"}, http.StatusBadRequest,
			"The header Content-Type must not be repeated.", "请求头 Content-Type 不得重复。"},
	}
	for _, tt := range tests {
		for _, lang := range []string{"", "zh-CN"} {
			t.Run(tt.name+"/"+lang, func(t *testing.T) {
				r := req("GET", tt.target, append([]string{"Accept-Language", lang}, tt.hdr...)...)
				if tt.peer != "" {
					r.RemoteAddr = tt.peer
				}
				w, _ := do(g, r)
				want := tt.en
				if lang != "" {
					want = tt.zh
				}
				var p problem
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || w.Code != tt.status || p.Detail != want {
					t.Errorf("%d %s, want %d with detail %q", w.Code, w.Body, tt.status, want)
				}
			})
		}
	}
}

// The plain-HTTP listener's refusal of a body sent in clear.
func TestRedirectToHTTPSLanguage(t *testing.T) {
	for _, al := range acceptLanguages {
		t.Run(al.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://crm.example.com/api/contacts", nil)
			r.RequestURI = "/api/contacts"
			if al.header != "" {
				r.Header.Set("Accept-Language", al.header)
			}
			w := httptest.NewRecorder()
			(&Server{}).redirectToHTTPS(w, r)
			want := map[string]string{i18n.English: "Use HTTPS.\n", i18n.SimplifiedChinese: "请使用 HTTPS。\n"}[al.want]
			if w.Code != http.StatusBadRequest || w.Body.String() != want || w.Header().Get("Content-Language") != al.want {
				t.Errorf("%d %q (%s), want 400 %q in %s", w.Code, w.Body, w.Header().Get("Content-Language"), want, al.want)
			}
		})
	}
}
