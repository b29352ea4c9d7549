package idp

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmgate/crmgate/i18n"
)

// The dev IdP's pages are in the language Accept-Language asks for, with
// their arguments (client, user, minutes locked) in both.
func TestPagesLanguage(t *testing.T) {
	p := &Provider{log: slog.New(slog.DiscardHandler), csrfKey: []byte("k")}
	a := &authRequest{id: "ar1", clientID: "crmgate", redirectURI: "https://crm.example/cb", pendingUser: "alice"}
	pages := []struct {
		name   string
		serve  func(w http.ResponseWriter, r *http.Request)
		en, zh []string
	}{
		{"login", func(w http.ResponseWriter, r *http.Request) {
			p.renderLogin(w, r, http.StatusUnprocessableEntity, a, "b", "alice", i18n.T(i18n.For(r), "idp.error.wrong_password"))
		}, []string{"<title>Sign in · crmgate dev IdP</title>", "Sign in to continue to <b>crmgate</b>.", ">Username</label>", ">Password</label>", "Wrong username or password."},
			[]string{"<title>登录 · crmgate 开发用身份提供方</title>", "登录以继续使用 <b>crmgate</b>。", ">用户名</label>", ">密码</label>", "用户名或密码错误。"}},
		{"second factor locked", func(w http.ResponseWriter, r *http.Request) {
			p.renderOTP(w, r, http.StatusTooManyRequests, a, "b", lockedMessage(r, 14*time.Minute+time.Second))
		}, []string{"<h1>Second factor</h1>", "for <b>alice</b>.", "try again in 15 minute(s).", ">Verify</button>"},
			[]string{"<h1>第二重验证</h1>", "为 <b>alice</b> 生成的 6 位验证码", "请在 15 分钟后再试。", ">验证</button>"}},
		{"error", p.handle(func(http.ResponseWriter, *http.Request) error {
			return errors.New("boom")
		}).ServeHTTP, []string{"<h1>Sign-in problem</h1>", "Something went wrong. Start again from the application."},
			[]string{"<h1>登录出现问题</h1>", "出现了问题。请从应用重新开始。"}},
		{"expired request", p.handle(func(http.ResponseWriter, *http.Request) error {
			return expired(errors.New("gone"))
		}).ServeHTTP, []string{"This sign-in request is unknown or has expired."},
			[]string{"此登录请求无效或已过期。"}},
		{"signed out", p.loggedOut, []string{"<h1>Signed out</h1>", "You are signed out of the crmgate dev IdP."},
			[]string{"<h1>已退出登录</h1>", "您已退出 crmgate 开发用身份提供方。"}},
	}
	for _, pg := range pages {
		for _, al := range []struct{ name, header, want string }{
			{"absent", "", i18n.English},
			{"Simplified Chinese", "zh-CN,zh;q=0.9", i18n.SimplifiedChinese},
			{"Traditional Chinese falls back", "zh-TW", i18n.English},
			{"hostile, a megabyte", strings.Repeat("zh-Hans", 1<<17), i18n.English},
			// Only the first 256 bytes count, and they ask for Chinese.
			{"many q-values", strings.Repeat("zh;q=0.5,", 1<<16), i18n.SimplifiedChinese},
		} {
			t.Run(pg.name+"/"+al.name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, "https://idp.example/login", nil)
				if al.header != "" {
					r.Header.Set("Accept-Language", al.header)
				}
				w := httptest.NewRecorder()
				pg.serve(w, r)
				if got := w.Header().Get("Content-Language"); got != al.want {
					t.Errorf("Content-Language = %q, want %q", got, al.want)
				}
				want := pg.en
				if al.want == i18n.SimplifiedChinese {
					want = pg.zh
				}
				body := w.Body.String()
				for _, s := range append(slices.Clip(want), `<html lang="`+al.want+`">`) {
					if !strings.Contains(body, s) {
						t.Errorf("page lacks %q:\n%s", s, body)
					}
				}
			})
		}
	}
}
