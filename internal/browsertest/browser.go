// Package browsertest drives HTTPS servers in tests the way a browser
// navigating them does: one cookie jar per Browser, redirects followed (or
// stopped where a test wants to look), HTML forms read, filled in and
// submitted with their hidden fields, and RFC 6238 codes for
// second-factor forms.
//
// It does not run scripts, render pages, load subresources or enforce the
// same-origin policy, and it adds no Origin or Sec-Fetch-* headers of its
// own: a test that needs them sets them on the request.
package browsertest

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	// maxRedirects is where browsers give up on a redirect chain
	// (Chromium and Firefox both stop at 20).
	maxRedirects = 20
	// timeout bounds one request, redirects included.
	timeout = 30 * time.Second
	// accept is what a browser sends for a top-level navigation; servers
	// that answer browsers and API clients differently look at it.
	accept = "text/html,application/xhtml+xml,*/*;q=0.8"
)

// Browser is an HTTP client with a cookie jar that follows redirects and
// asks for HTML. Every method fails the test on a transport error, so a
// test reads only pages.
//
// Its methods are safe for concurrent use; Stop is read on every redirect
// and must not be changed while a request is in flight. The zero Browser
// is not usable: New makes one.
type Browser struct {
	// Stop is asked about each redirect before it is followed, with the
	// request the redirect would make; when it returns true the redirect
	// response itself is returned. Nil follows every redirect, up to the
	// limit browsers have.
	Stop func(next *http.Request) bool

	t      testing.TB
	jar    *cookiejar.Jar
	client *http.Client
	// ua, when set, is the User-Agent of every request ("" sends none).
	ua *string
}

// Option changes how a Browser connects or what it sends.
type Option func(*Browser, *http.Transport)

// HTTP1 makes the browser offer only HTTP/1.1 (ALPN http/1.1), as a
// script's HTTP/1.1 client does.
func HTTP1() Option {
	return func(_ *Browser, tr *http.Transport) {
		tr.ForceAttemptHTTP2 = false
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
}

// WithUserAgent sends ua as the User-Agent of every request; "" sends
// none.
func WithUserAgent(ua string) Option {
	return func(b *Browser, _ *http.Transport) { b.ua = &ua }
}

// WithTLS lets f change the TLS configuration the browser connects with:
// cipher suites, curves, a session cache for resumption.
func WithTLS(f func(*tls.Config)) Option {
	return func(_ *Browser, tr *http.Transport) { f(tr.TLSClientConfig) }
}

// WithLocalAddr makes the browser connect from the loopback address ip
// (e.g. 127.0.0.2), as a client on another network would.
func WithLocalAddr(ip string) Option {
	return func(b *Browser, tr *http.Transport) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
		tr.DialContext = d.DialContext
	}
}

// New returns a Browser with an empty cookie jar that trusts the
// certificates in roots (the system roots when roots is nil) and speaks
// TLS 1.2 or later. Its idle connections are closed when the test ends.
func New(t testing.TB, roots *x509.CertPool, opts ...Option) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookiejar.New: %v", err)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
	b := &Browser{t: t, jar: jar}
	for _, o := range opts {
		o(b, tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	b.client = &http.Client{
		Jar:       jar,
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if b.Stop != nil && b.Stop(next) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b
}

// Page is a response, read in full.
type Page struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the whole response body.
	Body string
	// URL is the URL of the request that was answered: after the
	// redirects that were followed, before any that were not.
	URL *url.URL
}

// Location returns the page's Location header resolved against its URL,
// or nil when there is none or it does not parse.
func (p Page) Location() *url.URL {
	loc := p.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := p.URL.Parse(loc)
	if err != nil {
		return nil
	}
	return u
}

// Do sends req with the browser's cookies, follows redirects as Stop
// allows and returns the page it ends on. A request without an Accept
// header asks for HTML, as a navigation does.
func (b *Browser) Do(req *http.Request) Page {
	b.t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", accept)
	}
	if b.ua != nil && req.Header.Get("User-Agent") == "" {
		// An empty value makes net/http send no User-Agent at all.
		req.Header["User-Agent"] = []string{*b.ua}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatalf("%s %s: reading the body: %v", req.Method, resp.Request.URL, err)
	}
	return Page{Status: resp.StatusCode, Header: resp.Header, Body: string(body), URL: resp.Request.URL}
}

// Get navigates to rawURL.
func (b *Browser) Get(rawURL string) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return b.Do(req)
}

// Post posts form, URL-encoded, to rawURL with the extra header fields in
// header (nil for none).
func (b *Browser) Post(rawURL string, form url.Values, header http.Header) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatalf("POST %s: %v", rawURL, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.Do(req)
}

// Submit fills the form on p with fields and submits it with the form's
// method to its action, as a person typing into it and pressing its
// button would: every other field, hidden ones such as CSRF tokens
// included, keeps the value the page gave it. A field the form lacks is
// added. Submit fails the test when p has no form.
func (b *Browser) Submit(p Page, fields map[string]string) Page {
	b.t.Helper()
	f, err := parseForm(p)
	if err != nil {
		b.t.Fatalf("%v", err)
	}
	for k, v := range fields {
		f.values.Set(k, v)
	}
	if f.method == http.MethodGet {
		u, err := url.Parse(f.action)
		if err != nil {
			b.t.Fatalf("form action %q: %v", f.action, err)
		}
		u.RawQuery = f.values.Encode()
		return b.Get(u.String())
	}
	return b.Post(f.action, f.values, nil)
}

// CloseIdleConnections closes the browser's idle connections, so that the
// next request opens a new one (and resumes its TLS session when the
// configuration keeps one).
func (b *Browser) CloseIdleConnections() { b.client.CloseIdleConnections() }

// Cookies returns the cookies the browser would send to rawURL, with
// their names and values only, as a cookie jar keeps them.
func (b *Browser) Cookies(rawURL string) []*http.Cookie {
	b.t.Helper()
	return b.jar.Cookies(b.parse(rawURL))
}

// Cookie returns the cookie named name that the browser would send to
// rawURL, or nil when it would send none.
func (b *Browser) Cookie(rawURL, name string) *http.Cookie {
	b.t.Helper()
	for _, c := range b.Cookies(rawURL) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// SetCookie stores c in the jar as if a response from rawURL had set it,
// as a script or anyone with a foothold in the browser could.
func (b *Browser) SetCookie(rawURL string, c *http.Cookie) {
	b.t.Helper()
	b.jar.SetCookies(b.parse(rawURL), []*http.Cookie{c})
}

func (b *Browser) parse(rawURL string) *url.URL {
	b.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		b.t.Fatalf("url.Parse(%q): %v", rawURL, err)
	}
	return u
}
