package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/scope"
)

// acceptLanguages are the Accept-Language values every page is tried
// with, and the language each must be answered in.
var acceptLanguages = []struct {
	name, header, want string
}{
	{"absent", "", i18n.English},
	{"English", "en-GB,en;q=0.9", i18n.English},
	{"Simplified Chinese", "zh-CN,zh;q=0.9,en;q=0.8", i18n.SimplifiedChinese},
	{"Traditional Chinese falls back", "zh-TW,zh-Hant;q=0.9", i18n.English},
	{"hostile, a megabyte", strings.Repeat("zh-Hans", 1<<17), i18n.English},
	{"hostile, many q-values", strings.Repeat("x;q=0.1,", 1<<16) + "zh", i18n.English},
}

// Every page the sign-in endpoints show, in the language the request asks
// for, with the request id in both.
func TestPagesLanguage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	pages := []struct {
		name   string
		status int
		serve  func(w http.ResponseWriter, r *http.Request)
		// en and zh are texts the page shows in English and in
		// Simplified Chinese.
		en, zh []string
		json   bool
	}{
		{name: "login failed", status: http.StatusBadRequest,
			serve: func(w http.ResponseWriter, r *http.Request) {
				e.rp.loginFailed(w, r, http.StatusBadRequest, ReasonLoginExpired, nil)
			},
			en: []string{"<title>Bad Request</title>", "Sign-in could not be completed. Go back to the application and try again."},
			zh: []string{"<title>请求无效</title>", "无法完成登录。请返回应用后重试。"}},
		{name: "login refused", status: http.StatusForbidden,
			serve: func(w http.ResponseWriter, r *http.Request) {
				e.rp.loginFailed(w, r, http.StatusForbidden, ReasonProviderError, nil)
			},
			en: []string{"<title>Forbidden</title>", "Sign-in was refused by the identity provider."},
			zh: []string{"<title>禁止访问</title>", "身份提供方拒绝了此次登录。"}},
		{name: "login unavailable", status: http.StatusServiceUnavailable,
			serve: func(w http.ResponseWriter, r *http.Request) {
				e.rp.loginFailed(w, r, http.StatusServiceUnavailable, ReasonSessionStore, nil)
			},
			en: []string{"Sign-in is temporarily unavailable. Try again in a minute."},
			zh: []string{"登录暂时不可用。请一分钟后再试。"}},
		{name: "provider unreachable", status: http.StatusServiceUnavailable,
			serve: renderUnavailable,
			en:    []string{"<h1>Sign-in temporarily unavailable</h1>", "The identity provider cannot be reached right now"},
			zh:    []string{"<h1>登录暂时不可用</h1>", "目前无法连接身份提供方"}},
		{name: "logout form", status: http.StatusOK,
			serve: func(w http.ResponseWriter, r *http.Request) { renderLogoutForm(w, r, "/logout", "tok") },
			en:    []string{"<h1>Sign out</h1>", "Sign out of this application and your organisation&#39;s sign-in?", `<button type="submit">Sign out</button>`},
			zh:    []string{"<h1>退出登录</h1>", "要退出此应用并退出贵组织的统一登录吗？", `<button type="submit">退出登录</button>`}},
		{name: "logout form expired", status: http.StatusForbidden,
			serve: func(w http.ResponseWriter, r *http.Request) {
				renderError(w, r, http.StatusForbidden, "auth.error.logout_form_expired")
			},
			en: []string{"This sign-out form expired. Reload the page and try again."},
			zh: []string{"此退出登录表单已过期。请刷新页面后重试。"}},
		{name: "step-up done", status: http.StatusOK,
			serve: func(w http.ResponseWriter, r *http.Request) {
				r.URL.RawQuery = "back=%2Fcontacts"
				e.rp.stepUpDone(w, r)
			},
			en: []string{"<h1>Verification complete</h1>", `<a href="/contacts">Go back</a>`},
			zh: []string{"<h1>验证完成</h1>", `<a href="/contacts">返回</a>`}},
		{name: "step-up failed", status: http.StatusForbidden,
			serve: func(w http.ResponseWriter, r *http.Request) {
				e.rp.stepUpFailed(w, r, "alice", ReasonStepUpWeak, nil)
			},
			en: []string{"The additional verification did not succeed"},
			zh: []string{"附加验证未通过"}},
		{name: "challenge", status: http.StatusUnauthorized, json: true,
			serve: e.rp.Challenge,
			en:    []string{`"title":"Unauthorized"`, `"detail":"Authentication is required."`},
			zh:    []string{`"title":"Unauthorized"`, `"detail":"需要进行身份验证。"`}},
		{name: "step-up script", status: http.StatusUnauthorized, json: true,
			serve: func(w http.ResponseWriter, r *http.Request) {
				e.rp.StepUp(w, r, "alice", stepup.Required{ACR: "mfa"})
			},
			en: []string{`"title":"Unauthorized"`, "Open step_up_url in the browser, then repeat the request."},
			zh: []string{`"title":"Unauthorized"`, "请在浏览器中打开 step_up_url，然后重新发送请求。"}},
	}
	for _, p := range pages {
		for _, al := range acceptLanguages {
			t.Run(p.name+"/"+al.name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, "https://gateway.example/.crmgate/x", nil)
				if p.json {
					r.Header.Set("Accept", "application/json")
				} else {
					r.Header.Set("Accept", "text/html")
				}
				if al.header != "" {
					r.Header.Set("Accept-Language", al.header)
				}
				r = r.WithContext(scope.With(r.Context(), &scope.Scope{ID: "req-4711"}))
				w := httptest.NewRecorder()
				p.serve(w, r)
				body := w.Body.String()
				if w.Code != p.status {
					t.Errorf("status %d, want %d", w.Code, p.status)
				}
				if got := w.Header().Get("Content-Language"); got != al.want {
					t.Errorf("Content-Language = %q, want %q", got, al.want)
				}
				if got := w.Header().Values("Vary"); len(got) != 1 || got[0] != "Accept-Language" {
					t.Errorf("Vary = %q, want Accept-Language", got)
				}
				want, other := p.en, p.zh
				if al.want == i18n.SimplifiedChinese {
					want, other = p.zh, p.en
				}
				for _, s := range want {
					if !strings.Contains(body, s) {
						t.Errorf("body lacks %q:\n%s", s, body)
					}
				}
				for i, s := range other {
					if s != want[i] && strings.Contains(body, s) {
						t.Errorf("body has %q of the other language", s)
					}
				}
				if p.json {
					var prob problem
					if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil || prob.Title != "Unauthorized" {
						t.Errorf("problem %+v, %v", prob, err)
					}
					return
				}
				if !strings.Contains(body, `<html lang="`+al.want+`">`) {
					t.Errorf("html lang is not %q:\n%s", al.want, body)
				}
				idLine := map[string]string{i18n.English: "Request id: req-4711", i18n.SimplifiedChinese: "请求编号：req-4711"}[al.want]
				if !strings.Contains(body, idLine) {
					t.Errorf("body lacks %q", idLine)
				}
			})
		}
	}
}
