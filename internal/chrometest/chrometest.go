// Package chrometest runs a real headless Chromium for end-to-end tests,
// one per test, driven over the DevTools protocol by chromedp: a fresh
// profile under the test's temporary directory, TLS trust for the
// certificates the test names and no others, a timeout on every step,
// screenshots kept as test artifacts, the page's console and the
// browser's output logged when the test fails, and every Chromium process
// killed when the test ends.
//
// It needs the `chromium` binary (Debian's package of that name); a
// missing one fails the test, since `make test` installs it. It does not
// emulate devices, intercept requests or share a browser between tests;
// for HTTP-level browsing without a browser, see internal/browsertest.
package chrometest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// defaultTimeout bounds one step when Options.Timeout is zero. It is
	// generous because the race detector and a busy 2-core machine slow
	// the servers under test, not the browser.
	defaultTimeout = 20 * time.Second
	// startTimeout bounds launching Chromium and opening its first tab.
	startTimeout = 30 * time.Second
	// closeTimeout bounds the graceful close at cleanup; after it the
	// browser is killed.
	closeTimeout = 10 * time.Second
	// outputTail is how much of the browser's own output a failed test
	// logs.
	outputTail = 4096
)

// Options configure Start. The zero value starts a browser that trusts
// only the system's roots, with a 1280×800 viewport and the default step
// timeout.
type Options struct {
	// CAFile is a PEM file of the certificate authority that issued the
	// certificates of the origins in Trust. Required when Trust is not
	// empty.
	CAFile string

	// Trust lists HTTPS origins ("https://localhost:8443") whose
	// certificates the browser accepts. Start connects to each, verifies
	// the certificate it presents against CAFile (chain and host name) and
	// pins the key of that leaf with Chromium's
	// --ignore-certificate-errors-spki-list. Pinning the CA's key instead
	// would not do: Chromium compares the list with the certificates the
	// server sends (the leaf and any intermediates), never with a root it
	// does not send, and a development CA's servers send the leaf alone.
	Trust []string

	// SPKI lists more keys the browser accepts, as base64 SHA-256 hashes
	// of a SubjectPublicKeyInfo (see SPKIHash), for tests that pin keys
	// themselves.
	SPKI []string

	// Timeout bounds each step: a navigation with its redirects, a wait, a
	// click, a screenshot. Zero means 20 seconds.
	Timeout time.Duration

	// Width and Height are the window size in CSS pixels; zero means
	// 1280×800.
	Width, Height int
}

// Browser is a headless Chromium with one tab, owned by one test. Its
// methods fail the test on an error or a timeout, so a test reads only
// results. It is not safe for concurrent use: like a person, it does one
// thing at a time in its tab. The zero Browser is not usable: Start makes
// one.
type Browser struct {
	t       testing.TB
	tab     context.Context // the chromedp context of the tab; ends at cleanup
	timeout time.Duration
	console *consoleLog
	shots   int // screenshots taken, for unnamed ones
}

// Start launches headless Chromium for the test and opens a blank tab.
// When the test ends, the browser is closed (killed if it does not close
// within 10 seconds), with every process it started, before its profile
// directory is removed; if the test failed, what the pages wrote to the
// console and the browser's own output are logged.
//
// A missing chromium binary fails the test: `make test-deps` installs it.
func Start(t testing.TB, opts Options) *Browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found in PATH (%v): browser tests drive a real headless Chromium; "+
			"`make test-deps` installs it (apt-get install chromium)", err)
	}
	spki := append([]string(nil), opts.SPKI...)
	for _, origin := range opts.Trust {
		h, err := leafSPKI(opts.CAFile, origin)
		if err != nil {
			t.Fatalf("chrometest: trusting %s: %v", origin, err)
		}
		spki = append(spki, h)
	}
	width, height := opts.Width, opts.Height
	if width == 0 || height == 0 {
		width, height = 1280, 800
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}

	profile := t.TempDir()
	output := &lockedBuffer{}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		// The headless mode that is the real browser, not the separate
		// headless shell of old.
		chromedp.Flag("headless", "new"),
		// A fresh profile per test: no cookies, cache or HSTS state leak
		// between tests. Chromium also honours the SPKI list below only
		// when a user data directory is named on the command line.
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		chromedp.CombinedOutput(output),
		sandbox(),
	)
	if len(spki) > 0 {
		allocOpts = append(allocOpts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(spki, ",")))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)

	b := &Browser{t: t, tab: tab, timeout: timeout, console: &consoleLog{}}
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }() // launches the browser, opens the tab
	select {
	case err = <-started:
	case <-time.After(startTimeout):
		err = fmt.Errorf("no tab within %v", startTimeout)
	}
	// From here on the browser may be running: stop it whatever happens.
	t.Cleanup(func() {
		b.close(cancelTab, cancelAlloc, profile)
		if t.Failed() {
			b.logDiagnostics(output)
		}
	})
	if err != nil {
		t.Fatalf("starting %s: %v\nits output:\n%s", bin, err, tail(output.String(), outputTail))
	}
	b.console.follow(tab)
	return b
}

// sandbox keeps Chromium's sandbox on unless the test runs as root.
// Chromium refuses to start as root with its sandbox ("Running as root
// without --no-sandbox is not supported"): the setuid and user-namespace
// sandboxes exist to take privileges away from renderers, and a root
// browser process cannot give them a meaningful unprivileged identity.
// Test containers and CI jobs often run as root; there the pages under
// test are our own servers on loopback, which is what makes running
// without the sandbox acceptable. As any other user the sandbox stays
// on, as it is for people using the product.
func sandbox() chromedp.ExecAllocatorOption {
	// Set either way: chromedp would otherwise decide by the real uid,
	// Chromium decides by the effective one.
	return chromedp.Flag("no-sandbox", os.Geteuid() == 0)
}

// close shuts the browser down: gracefully first, then by killing it,
// then every process still using its profile, so that the profile
// directory can be removed.
func (b *Browser) close(cancelTab, cancelAlloc context.CancelFunc, profile string) {
	ctx, cancel := context.WithTimeout(b.tab, closeTimeout)
	err := chromedp.Cancel(ctx)
	cancel()
	cancelTab()
	cancelAlloc() // kills the browser if it is still running, and waits
	killLeftovers(profile)
	b.console.wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		b.t.Logf("chrometest: closing the browser: %v", err)
	}
}

// logDiagnostics logs what a failed test needs to see: the console of the
// pages and the tail of the browser's output.
func (b *Browser) logDiagnostics(output *lockedBuffer) {
	if msgs := b.console.messages(); len(msgs) > 0 {
		b.t.Logf("browser console:\n%s", strings.Join(msgs, "\n"))
	} else {
		b.t.Logf("browser console: empty")
	}
	if out := withoutNoise(output.String()); out != "" {
		b.t.Logf("browser output (last %d bytes):\n%s", outputTail, tail(out, outputTail))
	}
}

// withoutNoise drops the lines of the browser's output that every run in a
// container has: D-Bus clients finding no system or session bus.
func withoutNoise(out string) string {
	var sb strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			sb.WriteString(line)
		}
	}
	return sb.String()
}

// consoleLog collects what the tab's pages write to the console,
// exceptions and the browser's log entries (CSP violations, failed
// loads) included.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

// follow records the console of tab until tab ends.
func (c *consoleLog) follow(tab context.Context) {
	c.done = make(chan struct{})
	msgs := chromedp.Console(tab)
	go func() {
		defer close(c.done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			line := m.String()
			if m.URL != "" {
				line += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
			}
			c.mu.Lock()
			c.msgs = append(c.msgs, line)
			c.mu.Unlock()
		}
	}()
}

func (c *consoleLog) wait() {
	if c.done != nil {
		<-c.done
	}
}

func (c *consoleLog) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// lockedBuffer is the browser's output, written by chromedp's reader and
// read by cleanup.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
