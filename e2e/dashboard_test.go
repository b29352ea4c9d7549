package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/crmgate/crmgate/internal/chrometest"
)

// updateScreenshots, set to 1, makes TestDashboard write its screenshots
// to docs/dashboard/ as well, for the documentation.
const updateScreenshots = "CRMGATE_UPDATE_SCREENSHOTS"

// An operator opens the admin listener's dashboard in a real browser
// against `crmgate demo` with the shipped policy: the page asks for the
// admin token, then charts the traffic a background client makes
// (allowed, denied, step-up, rate-limited and unauthenticated calls),
// lists the signed-in users' sessions and revokes one with its button,
// which the admin API confirms; with Accept-Language zh-CN the same page
// is in Chinese. The latest audit events and the policy revision in
// force are shown too.
func TestDashboard(t *testing.T) {
	d := startDemo(t, "--policy", mustAbs(t, "../policies"))
	alice, bob, carol := d.session(t, "alice"), d.session(t, "bob"), d.session(t, "carol")

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.dashboardTraffic(ctx, alice, bob, carol) })
	defer wg.Wait()
	defer stop()

	b := d.chromium(t)
	b.Navigate(d.AdminURL + "/dashboard")
	b.WaitText("Enter the admin token")
	b.Fill("#token", d.AdminToken)
	b.Click(`#token-form button[type="submit"]`)
	b.WaitText("Active sessions: 3")
	for _, want := range []string{"Traffic over the last 10 minutes", "Requests per second", "Hijack alerts",
		"Latest audit events", "http.request", "Last reload", "success", "Counters since the gateway started"} {
		b.WaitText(want)
	}
	// Charts need two samples; a few more make a line.
	b.WaitText("last 10 minutes:")
	time.Sleep(11 * time.Second)
	if got := b.Eval(`Promise.resolve(String(document.querySelectorAll(".chart-plot svg polyline").length))`); got != "5" {
		t.Errorf("%s chart lines, want 5", got)
	}
	// The counters refresh on their own; each outcome shows up once the
	// background traffic has produced it.
	for _, want := range []string{"forwarded", "denied", "step_up", "rate_limited", "unauthenticated"} {
		b.WaitText(want)
	}
	d.saveDashboardShot(t, b, "dashboard-en.png")

	hash := d.sessionHash(t, "alice")
	b.Click(`tr[data-session="` + hash + `"] button.revoke`)
	b.WaitText("The session of alice was revoked.")
	b.WaitText("Active sessions: 2")
	if h := d.sessionHash(t, "alice"); h != "" {
		t.Errorf("GET /sessions still lists alice's session %s after the revoke button", h)
	}

	// The same tab asks in Chinese; the token is still in the tab.
	err := b.Do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": "zh-CN,zh;q=0.9"},
		})
		return err
	}))
	if err != nil {
		t.Fatalf("setting Accept-Language: %v", err)
	}
	b.Navigate(d.AdminURL + "/dashboard")
	for _, want := range []string{"crmgate 安全仪表板", "活动会话：2 个", "撤销", "最新审计事件", "上次加载结果", "最近 10 分钟的流量"} {
		b.WaitText(want)
	}
	b.WaitText("最近 10 分钟：")
	time.Sleep(6 * time.Second)
	if text := b.Text(); strings.Contains(text, "Active sessions") || strings.Contains(text, "Revoke") {
		t.Errorf("English on the Chinese page:\n%s", tail(text, 1500))
	}
	d.saveDashboardShot(t, b, "dashboard-zh.png")

	for _, m := range b.Console() {
		if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Uncaught") {
			t.Errorf("browser console: %s", m)
		}
	}
}

// dashboardTraffic calls the gateway until ctx ends, a few times a
// second: allowed reads, a denied one, one that needs a step-up, an
// unauthenticated one, and bursts of an API key beyond its rate limit.
func (d *demo) dashboardTraffic(ctx context.Context, alice, bob, carol string) {
	key := ""
	for _, k := range d.APIKeys {
		if k.Name == "integration-read" {
			key = k.Key
		}
	}
	calls := [][]string{
		{"/api/contacts?per_page=1", "Cookie", alice},
		{"/api/invoices", "Cookie", bob},
		{"/api/deals", "Cookie", bob},
		{"/api/admin/users", "Cookie", carol},
		{"/api/contacts", "", ""},
		{"/api/contacts/1", "Cookie", carol},
	}
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c := calls[i%len(calls)]
		d.quietGet(ctx, c[0], c[1], c[2])
		if key != "" && i%40 == 0 {
			// Every 6 seconds, 40 calls at once: twice the key's burst,
			// however slowly this machine serves them.
			var burst sync.WaitGroup
			for range 40 {
				burst.Go(func() { d.quietGet(ctx, "/api/deals", "X-API-Key", key) })
			}
			burst.Wait()
		}
	}
}

// quietGet sends a GET to the gateway and ignores what happens: it runs
// outside the test's goroutine.
func (d *demo) quietGet(ctx context.Context, path, name, value string) {
	req, err := http.NewRequestWithContext(ctx, "GET", d.GatewayURL+path, nil)
	if err != nil {
		return
	}
	if name != "" {
		req.Header.Set(name, value)
	}
	req.Header.Set("Accept", "application/json")
	if res, err := d.client.Do(req); err == nil {
		res.Body.Close()
	}
}

// sessionHash returns the id_hash of user's session as GET /sessions
// lists it, or "" when there is none.
func (d *demo) sessionHash(t *testing.T, user string) string {
	t.Helper()
	res, body := d.adminGet(t, "/sessions?user="+user)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /sessions: %d %s", res.StatusCode, body)
	}
	var list struct {
		Sessions []struct {
			Hash string `json:"id_hash"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) == 0 {
		return ""
	}
	return list.Sessions[0].Hash
}

// saveDashboardShot takes a screenshot as a test artifact and, with
// CRMGATE_UPDATE_SCREENSHOTS=1, copies it to docs/dashboard/.
func (d *demo) saveDashboardShot(t *testing.T, b *chrometest.Browser, name string) {
	t.Helper()
	path := b.Screenshot(name)
	if os.Getenv(updateScreenshots) != "1" {
		return
	}
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join("..", "docs", "dashboard", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", dst)
}
