package browsertest

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const loginForm = `<!doctype html><title>Sign in</title>
<form method="post" action="/login?step=1">
<input type="hidden" name="csrf" value="token-from-the-page">
<input name="username" value="">
<input name="password" type="password">
<input type="checkbox" name="remember" value="yes">
<button type="submit" name="go" value="1">Sign in</button>
</form>`

// server is a small site: a login form that sets a cookie, its handler,
// and a redirect chain /r/3 → /r/2 → /r/1 → /r/0.
func server(t *testing.T) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "bind", Value: "b1", Path: "/", Secure: true, HttpOnly: true})
		io.WriteString(w, loginForm)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c, err := r.Cookie("bind")
		if err != nil {
			http.Error(w, "no binding cookie", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "cookie=%s step=%s form=%s accept=%s", c.Value, r.URL.Query().Get("step"), r.PostForm.Encode(), r.Header.Get("Accept"))
	})
	mux.HandleFunc("GET /r/{n}", func(w http.ResponseWriter, r *http.Request) {
		switch n := r.PathValue("n"); n {
		case "0":
			io.WriteString(w, "end")
		case "loop":
			http.Redirect(w, r, "/r/loop", http.StatusFound)
		default:
			next := map[string]string{"3": "2", "2": "1", "1": "0"}[n]
			http.Redirect(w, r, "/r/"+next, http.StatusFound)
		}
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, roots
}

func TestSubmitKeepsHiddenFieldsAndCookies(t *testing.T) {
	srv, roots := server(t)
	b := New(t, roots)
	p := b.Get(srv.URL + "/login")
	if p.Status != http.StatusOK || p.URL.String() != srv.URL+"/login" {
		t.Fatalf("Get(/login) = %d at %s, want 200 at %s/login", p.Status, p.URL, srv.URL)
	}
	if c := b.Cookie(srv.URL, "bind"); c == nil || c.Value != "b1" {
		t.Fatalf("Cookie(bind) = %v, want b1", c)
	}

	got := b.Submit(p, map[string]string{"username": "alice", "password": "pw"}).Body
	want := "cookie=b1 step=1 form=csrf=token-from-the-page&password=pw&username=alice accept=" + accept
	if got != want {
		t.Errorf("Submit posted\n%s\nwant\n%s", got, want)
	}
}

func TestSetCookie(t *testing.T) {
	srv, roots := server(t)
	b := New(t, roots)
	p := b.Get(srv.URL + "/login")
	b.SetCookie(srv.URL, &http.Cookie{Name: "bind", Value: "forged", Path: "/"})
	if got := b.Submit(p, nil).Body; !strings.HasPrefix(got, "cookie=forged ") {
		t.Errorf("after SetCookie the form posted %q, want the forged cookie", got)
	}
	if got := b.Cookies(srv.URL); len(got) != 1 || got[0].Value != "forged" {
		t.Errorf("Cookies = %v, want only bind=forged", got)
	}
	if c := b.Cookie(srv.URL, "other"); c != nil {
		t.Errorf("Cookie(other) = %v, want nil", c)
	}
}

func TestStop(t *testing.T) {
	srv, roots := server(t)
	tests := []struct {
		name     string
		stop     func(*http.Request) bool
		wantPath string
		wantLoc  string // path of Location, "" for none
	}{
		{"follow all", nil, "/r/0", ""},
		{"before /r/1", func(r *http.Request) bool { return r.URL.Path == "/r/1" }, "/r/2", "/r/1"},
		{"first redirect", func(*http.Request) bool { return true }, "/r/3", "/r/2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(t, roots)
			b.Stop = tt.stop
			p := b.Get(srv.URL + "/r/3")
			if p.URL.Path != tt.wantPath {
				t.Errorf("Get(/r/3) ended at %s, want %s", p.URL.Path, tt.wantPath)
			}
			var loc string
			if u := p.Location(); u != nil {
				if u.Host != p.URL.Host {
					t.Errorf("Location() = %s, want it resolved against %s", u, p.URL)
				}
				loc = u.Path
			}
			if loc != tt.wantLoc {
				t.Errorf("Location().Path = %q, want %q", loc, tt.wantLoc)
			}
		})
	}
}

func TestParseForm(t *testing.T) {
	base, _ := url.Parse("https://gw.example/a/page?x=1")
	tests := []struct {
		name       string
		body       string
		wantAction string
		want       url.Values
	}{
		{"hidden and text", loginForm, "https://gw.example/login?step=1",
			url.Values{"csrf": {"token-from-the-page"}, "username": {""}, "password": {""}}},
		{"relative action", `<form action="next"><input name="a" value="1"></form>`, "https://gw.example/a/next",
			url.Values{"a": {"1"}}},
		{"no action", `<form><input name="a"></form>`, "https://gw.example/a/page?x=1", url.Values{"a": {""}}},
		{"first form only", `<form action="/one"><input name="a" value="1"></form><form action="/two"><input name="b"></form>`,
			"https://gw.example/one", url.Values{"a": {"1"}}},
		{"left out", `<form action="/f">
			<input value="unnamed">
			<input name="off" disabled value="1">
			<input type="submit" name="s" value="go">
			<input type="image" name="i">
			<input type="reset" name="r">
			<input type="file" name="f">
			<input type="checkbox" name="c" value="1">
			<input type="radio" name="r2" value="1">
			</form>`, "https://gw.example/f", url.Values{}},
		{"checked", `<form action="/f">
			<input type="checkbox" name="c" checked>
			<input type="checkbox" name="tags" value="a" checked><input type="checkbox" name="tags" value="b" checked>
			<input type="radio" name="r" value="x"><input type="radio" name="r" value="y" checked>
			</form>`, "https://gw.example/f", url.Values{"c": {"on"}, "tags": {"a", "b"}, "r": {"y"}}},
		{"textarea and select", `<form action="/f">
			<textarea name="note">
two words</textarea>
			<select name="plain"><option>  First  one </option><option value="2">Two</option></select>
			<select name="chosen"><option value="1">One</option><option value="2" selected>Two</option></select>
			<select name="many" multiple><option value="1" selected>One</option><option value="2">Two</option><option value="3" selected>Three</option></select>
			</form>`, "https://gw.example/f",
			url.Values{"note": {"two words"}, "plain": {"First one"}, "chosen": {"2"}, "many": {"1", "3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			action, got := ParseForm(t, Page{Status: http.StatusOK, URL: base, Body: tt.body})
			if action != tt.wantAction {
				t.Errorf("ParseForm action = %q, want %q", action, tt.wantAction)
			}
			if d := cmp.Diff(got, tt.want); d != "" {
				t.Errorf("ParseForm fields (-got +want):\n%s", d)
			}
		})
	}
}

func TestSubmitGetForm(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/search" {
			io.WriteString(w, r.URL.RawQuery)
			return
		}
		io.WriteString(w, `<form action="/search?dropped=1"><input type="hidden" name="scope" value="all"><input name="q"></form>`)
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	b := New(t, roots)
	got := b.Submit(b.Get(srv.URL+"/"), map[string]string{"q": "acme"}).Body
	if want := "q=acme&scope=all"; got != want {
		t.Errorf("Submit of a GET form sent query %q, want %q", got, want)
	}
}

func TestLocation(t *testing.T) {
	base, _ := url.Parse("https://gw.example/a/b")
	tests := []struct {
		loc  string
		want string // "" for nil
	}{
		{"", ""},
		{"/c?d=1", "https://gw.example/c?d=1"},
		{"c", "https://gw.example/a/c"},
		{"https://idp.example/authorize", "https://idp.example/authorize"},
		{"%zz", ""},
	}
	for _, tt := range tests {
		p := Page{URL: base, Header: http.Header{}}
		if tt.loc != "" {
			p.Header.Set("Location", tt.loc)
		}
		var got string
		if u := p.Location(); u != nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("Location() with %q = %q, want %q", tt.loc, got, tt.want)
		}
	}
}

// RFC 6238 Appendix B, SHA-1, reduced to six digits (RFC 4226 §5.3
// truncates modulo 10^Digits).
func TestTOTPAt(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	tests := []struct {
		unix int64
		want string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1234567890, "005924"},
		{2000000000, "279037"},
	}
	for _, tt := range tests {
		if got := TOTPAt(t, secret, time.Unix(tt.unix, 0)); got != tt.want {
			t.Errorf("TOTPAt(%d) = %s, want %s", tt.unix, got, tt.want)
		}
	}
	if got := TOTP(t, secret); got != TOTPAt(t, secret, time.Now()) && got != TOTPAt(t, secret, time.Now().Add(-time.Second)) {
		t.Errorf("TOTP = %s, not the code of the current step", got)
	}
}

// fatalTB records the first Fatalf and ends the goroutine, as testing.T
// does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs fn with a fatalTB and returns what it failed with.
func fatal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	tb := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tb)
	}()
	<-done
	return tb.msg
}

func TestFailures(t *testing.T) {
	srv, roots := server(t)
	tests := []struct {
		name  string
		roots *x509.CertPool
		do    func(*Browser)
		want  string
	}{
		{"untrusted certificate", x509.NewCertPool(), func(b *Browser) { b.Get(srv.URL + "/login") }, "certificate"},
		{"redirect loop", roots, func(b *Browser) { b.Get(srv.URL + "/r/loop") }, "stopped after 20 redirects"},
		{"no form", roots, func(b *Browser) { b.Submit(b.Get(srv.URL+"/r/0"), nil) }, "no form on"},
		{"bad URL", roots, func(b *Browser) { b.Get("https://[::1") }, "GET https://[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := fatal(t, func(tb testing.TB) { tt.do(New(tb, tt.roots)) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("failed with %q, want a message containing %q", msg, tt.want)
			}
		})
	}
}
