package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// headerTransport sets fixed headers on every request, redirects
// included, as a browser does with its user agent and language.
type headerTransport struct {
	base    http.RoundTripper
	headers []string
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for _, h := range t.headers {
		if name, value, ok := strings.Cut(h, ":"); ok {
			r.Header.Set(name, strings.TrimSpace(value))
		}
	}
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	return t.base.RoundTrip(r)
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// parseLoginForm returns the hidden fields of the development IdP's
// password form (authRequestID and csrf).
func parseLoginForm(page string) (url.Values, error) {
	if !strings.Contains(page, `action="/login"`) {
		return nil, errors.New("no login form on the page")
	}
	page, _, _ = strings.Cut(page[strings.Index(page, `action="/login"`):], "</form>")
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("authRequestID") == "" || v.Get("csrf") == "" {
		return nil, fmt.Errorf("login form without authRequestID or csrf: %v", v)
	}
	return v, nil
}

// signIn signs the benchmark user in the way a browser does: it opens
// start (a page of the gateway that sends it to the IdP), fills in the
// password form, follows the redirects back through the gateway's
// callback, and returns the Cookie header of the gateway's cookies.
func signIn(ctx context.Context, e *env, start string) (string, error) {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{Proxy: nil, TLSClientConfig: clientTLS(e.caPool)}
	defer tr.CloseIdleConnections()
	c := &http.Client{Jar: jar, Transport: headerTransport{tr, browserHeaders}, Timeout: 20 * time.Second}
	get := func(u string) (*http.Response, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, "", err
		}
		res, err := c.Do(req)
		if err != nil {
			return nil, "", err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b), nil
	}
	res, page, err := get(start)
	if err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	form, err := parseLoginForm(page)
	if err != nil {
		return "", fmt.Errorf("sign-in at %s (%d): %w", res.Request.URL, res.StatusCode, err)
	}
	form.Set("username", benchUser)
	form.Set("password", benchPassword)
	action := e.idpURL + "/login"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.Do(req)
	if err != nil {
		return "", fmt.Errorf("sign-in: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("sign-in ended at %s with %d: %.300s", res.Request.URL, res.StatusCode, body)
	}
	u, _ := url.Parse(start)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return "", errors.New("sign-in: the gateway set no cookie")
	}
	return "Cookie: " + strings.Join(parts, "; "), nil
}
