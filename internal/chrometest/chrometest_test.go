package chrometest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"image/png"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pki is a test certificate authority and a leaf it issued for 127.0.0.1.
type pki struct {
	caFile string
	ca     *x509.Certificate
	leaf   tls.Certificate // the leaf alone in its chain
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "chrometest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign,
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "chrometest CA"}}, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return pki{caFile: caFile, ca: ca, leaf: tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}
}

// withCA returns the leaf with the CA certificate appended to the chain
// it sends.
func (p pki) withCA() tls.Certificate {
	c := p.leaf
	c.Certificate = append(slices.Clip(c.Certificate), p.ca.Raw)
	return c
}

// serveTLS serves h over TLS on loopback with cert.
func serveTLS(t *testing.T, cert tls.Certificate, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshakes a browser refuses are what some cases expect.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprint(w, "<!doctype html><title>hello</title><p>hello over TLS</p>")
})

// What the SPKI list must name: Chromium matches it against the
// certificates the server sends, so a CA that is not in the sent chain
// does not count, however the chain verifies.
func TestStartTrust(t *testing.T) {
	p := newPKI(t)
	leafOnly := serveTLS(t, p.leaf, hello)
	withCA := serveTLS(t, p.withCA(), hello)
	caKey := SPKIHash(p.ca)

	tests := []struct {
		name    string
		url     string
		opts    Options
		wantErr string // the net error of the navigation; "" for success
	}{
		{name: "leaf pinned through Trust", url: leafOnly.URL,
			opts: Options{CAFile: p.caFile, Trust: []string{leafOnly.URL}}},
		{name: "nothing pinned", url: leafOnly.URL,
			wantErr: "net::ERR_CERT_AUTHORITY_INVALID"},
		{name: "CA key pinned, server sends the leaf alone", url: leafOnly.URL,
			opts: Options{SPKI: []string{caKey}}, wantErr: "net::ERR_CERT_AUTHORITY_INVALID"},
		{name: "CA key pinned, server sends the CA too", url: withCA.URL,
			opts: Options{SPKI: []string{caKey}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Start(t, tt.opts)
			err := b.Do(chromedp.Navigate(tt.url))
			var le *chromedp.LoadError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Navigate(%s) = %v, want the page", tt.url, err)
			case tt.wantErr == "":
				if got := b.Text(); !strings.Contains(got, "hello over TLS") {
					t.Errorf("page text = %q, want the server's page", got)
				}
			case !errors.As(err, &le) || le.ErrorText != tt.wantErr:
				t.Errorf("Navigate(%s) = %v, want a load error %s", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestLeafSPKI(t *testing.T) {
	p := newPKI(t)
	srv := serveTLS(t, p.leaf, hello)
	other := newPKI(t)
	leaf, err := x509.ParseCertificate(p.leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		caFile  string
		origin  string
		want    string
		wantErr bool
	}{
		{name: "leaf issued by the CA", caFile: p.caFile, origin: srv.URL, want: SPKIHash(leaf)},
		{name: "another CA", caFile: other.caFile, origin: srv.URL, wantErr: true},
		{name: "no CA file", origin: srv.URL, wantErr: true},
		{name: "not https", caFile: p.caFile, origin: strings.Replace(srv.URL, "https:", "http:", 1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := leafSPKI(tt.caFile, tt.origin)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("leafSPKI(%q, %q) = %q, %v; want %q, error %v", tt.caFile, tt.origin, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// A form signed in to by hand: fill, submit through a redirect, read the
// page, its cookies, its console and a screenshot.
func TestBrowserForm(t *testing.T) {
	p := newPKI(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>form</title>
<form method="post" action="/hello"><input id="name" name="name" value="prefilled"><button id="go">Go</button></form>
<script>console.error("boom from the page")</script>`)
	})
	mux.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "1", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/done?name="+url.QueryEscape(r.PostFormValue("name")), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>done</title><p>Hello, %s</p><a id="again" href="/">again</a>`, html.EscapeString(r.URL.Query().Get("name")))
	})
	srv := serveTLS(t, p.leaf, mux)
	b := Start(t, Options{CAFile: p.caFile, Trust: []string{srv.URL}})

	b.Navigate(srv.URL + "/")
	b.Fill("#name", "Ada <Lovelace>")
	shot := b.Screenshot("form")
	b.Submit("#go")
	if u := b.URL(); u.Path != "/done" {
		t.Errorf("after submitting: at %s, want /done", u)
	}
	b.WaitText("Hello, Ada <Lovelace>")
	c := b.Cookie(srv.URL, "s")
	if c == nil || !c.HTTPOnly || !c.Secure {
		t.Errorf("cookie s = %+v, want one that is HttpOnly and Secure", c)
	}
	b.Click("#again")
	b.WaitURL("the form again", func(u *url.URL) bool { return u.Path == "/" })
	b.WaitText("Go")
	if got := b.Console(); !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "error: boom from the page") }) {
		t.Errorf("Console() = %q, want the page's console.error", got)
	}

	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 1280 {
		t.Errorf("screenshot %s: %+v, %v; want a PNG 1280 pixels wide", shot, cfg, err)
	}
	if dir := filepath.Dir(shot); dir != t.ArtifactDir() {
		t.Errorf("screenshot in %s, want the artifact directory %s", dir, t.ArtifactDir())
	}
}
