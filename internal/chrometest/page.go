package chrometest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// pollInterval is how often the waits look at the page again; pollTry
// bounds one look, which can stall while a navigation replaces the
// document.
const (
	pollInterval = 100 * time.Millisecond
	pollTry      = 2 * time.Second
)

// Do runs chromedp actions in the tab within the step timeout and returns
// their error, for what the other methods do not cover (and for tests
// that expect a step to fail).
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Navigate opens rawURL in the tab and waits until the page it ends on,
// redirects followed, has loaded. A page that cannot be loaded (a refused
// connection, an untrusted certificate) fails the test; an HTTP error
// status does not, since it is a page too.
func (b *Browser) Navigate(rawURL string) {
	b.t.Helper()
	if err := b.Do(chromedp.Navigate(rawURL)); err != nil {
		b.t.Fatalf("navigating to %s: %v", rawURL, err)
	}
}

// Fill types value into the form field that the CSS selector sel finds,
// after clearing it, as a person would: key by key, with the events a
// page may listen to.
func (b *Browser) Fill(sel, value string) {
	b.t.Helper()
	if err := b.Do(chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value)); err != nil {
		b.t.Fatalf("filling %s on %s: %v", sel, b.location(), err)
	}
}

// Click clicks the centre of the element that sel finds, once it is
// visible, and returns without waiting for what the click starts.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	if err := b.Do(chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("clicking %s on %s: %v", sel, b.location(), err)
	}
}

// Submit clicks the element that sel finds, a form's submit button, and
// waits until the page the submission leads to, redirects followed, has
// loaded. A click that starts no navigation fails the test at the step
// timeout.
func (b *Browser) Submit(sel string) {
	b.t.Helper()
	at := b.location()
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no page loaded within %v", b.timeout)
		}
		b.t.Fatalf("submitting with %s on %s: %v (now at %s)", sel, at, err, b.location())
	}
}

// URL returns the URL of the page in the tab.
func (b *Browser) URL() *url.URL {
	b.t.Helper()
	raw, err := b.eval(b.tab, `document.location.href`)
	if err != nil {
		b.t.Fatalf("reading the page's URL: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		b.t.Fatalf("the page's URL %q: %v", raw, err)
	}
	return u
}

// Text returns the text of the page as it is rendered (the body's
// innerText): what a person reads, without markup or hidden elements.
func (b *Browser) Text() string {
	b.t.Helper()
	s, err := b.eval(b.tab, `document.body ? document.body.innerText : ""`)
	if err != nil {
		b.t.Fatalf("reading the page's text at %s: %v", b.location(), err)
	}
	return s
}

// WaitURL waits until the URL of the page in the tab satisfies match and
// returns it; want says what is awaited, for the failure message.
func (b *Browser) WaitURL(want string, match func(*url.URL) bool) *url.URL {
	b.t.Helper()
	var last string
	err := b.poll(func(ctx context.Context) (bool, error) {
		raw, err := b.eval(ctx, `document.location.href`)
		if err != nil {
			return false, err
		}
		last = raw
		u, err := url.Parse(raw)
		return err == nil && match(u), nil
	})
	if err != nil {
		b.t.Fatalf("waiting for %s: %v; the page is at %s", want, err, last)
	}
	u, _ := url.Parse(last)
	return u
}

// WaitHost waits until the page in the tab is on host (host:port) and has
// loaded, and returns its URL.
func (b *Browser) WaitHost(host string) *url.URL {
	b.t.Helper()
	u := b.WaitURL("a page on "+host, func(u *url.URL) bool { return u.Host == host })
	b.waitLoaded()
	return u
}

// WaitText waits until the text of the page contains text.
func (b *Browser) WaitText(text string) {
	b.t.Helper()
	var last string
	err := b.poll(func(ctx context.Context) (bool, error) {
		s, err := b.eval(ctx, `document.body ? document.body.innerText : ""`)
		if err != nil {
			return false, err
		}
		last = s
		return strings.Contains(s, text), nil
	})
	if err != nil {
		b.t.Fatalf("waiting for %q on %s: %v; the page reads:\n%s", text, b.location(), err, tail(last, 2000))
	}
}

// waitLoaded waits until the document in the tab has loaded.
func (b *Browser) waitLoaded() {
	b.t.Helper()
	err := b.poll(func(ctx context.Context) (bool, error) {
		s, err := b.eval(ctx, `document.readyState`)
		return s == "complete", err
	})
	if err != nil {
		b.t.Fatalf("waiting for %s to load: %v", b.location(), err)
	}
}

// Cookies returns the cookies the browser holds for rawURLs (for the
// page in the tab when there are none), with every attribute: the
// protocol's view, which sees HttpOnly cookies that scripts cannot.
func (b *Browser) Cookies(rawURLs ...string) []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: rawURLs})
	if err != nil {
		b.t.Fatalf("reading cookies for %v: %v", rawURLs, err)
	}
	return res.Cookies
}

// Cookie returns the cookie named name that the browser holds for rawURL,
// or nil when it holds none.
func (b *Browser) Cookie(rawURL, name string) *network.Cookie {
	b.t.Helper()
	for _, c := range b.Cookies(rawURL) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Console returns what the tab's pages have written to the console so far,
// one message a line: calls of the console API, uncaught exceptions and
// the browser's own entries, such as Content-Security-Policy violations
// and failed loads.
func (b *Browser) Console() []string {
	return b.console.messages()
}

// Screenshot saves a PNG of the whole page in the test's artifact
// directory (testing.T.ArtifactDir) as name (".png" added when missing)
// and returns its path. With `go test -artifacts` the directory is kept,
// under _artifacts in -outputdir (by default the directory go test runs
// in), and go test prints it on an "=== ARTIFACTS" line; without the
// flag it is a temporary directory, removed when the test ends.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	b.shots++
	if name == "" {
		name = fmt.Sprintf("%02d", b.shots)
	}
	if filepath.Ext(name) != ".png" {
		name += ".png"
	}
	if filepath.Base(name) != name {
		b.t.Fatalf("screenshot name %q is not a file name", name)
	}
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err != nil {
		b.t.Fatalf("screenshot of %s: %v", b.location(), err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("saving the screenshot: %v", err)
	}
	b.t.Logf("screenshot %s: %s", name, path)
	return path
}

// location is the page's URL for messages; it never fails the test.
func (b *Browser) location() string {
	ctx, cancel := context.WithTimeout(b.tab, pollTry)
	defer cancel()
	s, err := b.eval(ctx, `document.location.href`)
	if err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	return s
}

func (b *Browser) eval(ctx context.Context, expr string) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// poll calls try until it reports done or the step timeout passes. An
// error from try (a document being replaced mid-call) is retried; the
// last one is returned with the timeout.
func (b *Browser) poll(try func(ctx context.Context) (bool, error)) error {
	deadline := time.Now().Add(b.timeout)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(b.tab, min(pollTry, time.Until(deadline)))
		done, err := try(ctx)
		cancel()
		if done && err == nil {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if b.tab.Err() != nil {
			return b.tab.Err()
		}
		if time.Until(deadline) < pollInterval {
			if lastErr != nil {
				return fmt.Errorf("timed out after %v (last error: %w)", b.timeout, lastErr)
			}
			return errors.New("timed out after " + b.timeout.String())
		}
		time.Sleep(pollInterval)
	}
}

// Eval runs the JavaScript expression expr in the page, awaiting it when
// it is a promise, and returns its value, which must be a string (e.g.
// `fetch(u).then(r => r.status + " " + r.statusText)`): what a page's own
// script would see. An exception fails the test.
func (b *Browser) Eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return s
}

// NewWindow opens a tab in a new browser context of the same Chromium,
// like a private window: it shares no cookies and no connections with b,
// so its first request to a server opens a new TLS connection from the
// same browser. The window closes with b's browser.
func (b *Browser) NewWindow() *Browser {
	b.t.Helper()
	tab, cancel := chromedp.NewContext(b.tab, chromedp.WithNewBrowserContext())
	w := &Browser{t: b.t, tab: tab, timeout: b.timeout, console: &consoleLog{}}
	// The first run creates the tab and ties it to the context it runs
	// in: that must be the tab's own, not one with a deadline.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(tab) }()
	var err error
	select {
	case err = <-opened:
	case <-time.After(b.timeout):
		err = fmt.Errorf("no window within %v", b.timeout)
	}
	if err != nil {
		cancel()
		b.t.Fatalf("opening a new window: %v", err)
	}
	b.t.Cleanup(func() {
		ctx, stop := context.WithTimeout(tab, closeTimeout)
		_ = chromedp.Cancel(ctx)
		stop()
		cancel()
		w.console.wait()
	})
	w.console.follow(tab)
	return w
}

// SetCookie stores c in the browser's cookie jar for rawURL, as if a
// response from there had set it.
func (b *Browser) SetCookie(rawURL string, c *network.Cookie) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.tab, b.timeout)
	defer cancel()
	secure, httpOnly := c.Secure, c.HTTPOnly
	_, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: c.Name, Value: c.Value, URL: rawURL, Path: c.Path, Secure: &secure, HTTPOnly: &httpOnly, SameSite: c.SameSite,
	})
	if err != nil {
		b.t.Fatalf("setting cookie %s for %s: %v", c.Name, rawURL, err)
	}
}
