package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmgate/crmgate/secret"
)

// failingBundle is signed by s, compiles, and fails its own test.
func failingBundle(t testing.TB, s bundleKey) []byte {
	t.Helper()
	return opaBundle(t, s,
		map[string]string{
			"authz.rego":      "package crmgate.authz\n\ndecision := {\"allow\": false, \"reason\": data.crmgate.reason}\n",
			"authz_test.rego": bundleTest,
		},
		map[string]any{"crmgate": map[string]any{"reason": "failing"}}, "rev-failing")
}

// bundleEngine is an engine on a bundle and the reload events after its
// first load.
type bundleEngine struct {
	e      *Engine
	events chan ReloadEvent
	logs   *bundleLog
}

type bundleLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *bundleLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *bundleLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newBundleEngine makes an engine for b, validated as the configuration
// check would, and loads it; load says whether that must succeed.
func newBundleEngine(t *testing.T, b BundleConfig, load bool) (*bundleEngine, error) {
	t.Helper()
	cfg := Config{Bundle: &b, Debounce: 20 * time.Millisecond}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	be := &bundleEngine{events: make(chan ReloadEvent, 64), logs: &bundleLog{}}
	var err error
	be.e, err = New(cfg, Options{
		Logger:   slog.New(slog.NewTextHandler(be.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnReload: func(ev ReloadEvent) { be.events <- ev },
	})
	if err != nil {
		t.Fatal(err)
	}
	err = be.e.Load(context.Background())
	if load && err != nil {
		t.Fatalf("Load: %v", err)
	}
	<-be.events
	return be, err
}

func (be *bundleEngine) reason(t *testing.T) string {
	t.Helper()
	s := reqScope("GET", "/", "any", nil)
	d := be.e.Decide(context.Background(), be.e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
	if !d.Allow || d.Failed() {
		t.Fatalf("Decide = %+v, want the active set's allow", d)
	}
	return d.Reason
}

// reload reloads and checks the result; the active set must then decide
// with reason.
func (be *bundleEngine) reload(t *testing.T, result, reason string) ReloadEvent {
	t.Helper()
	ev := be.e.Reload(context.Background())
	<-be.events
	if ev.Result != result {
		t.Errorf("Reload = %s (%v), want %s", ev.Result, ev.Err, result)
	}
	if got := be.reason(t); got != reason {
		t.Errorf("after the reload, decision = %q, want %q", got, reason)
	}
	return ev
}

func writeBundleFile(t testing.TB, path string, b []byte) {
	t.Helper()
	// Atomically, as a deployment would: a reader sees the old or the
	// new file, whole.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// A bundle file loads like a folder; whatever replaces it later is
// verified, compiled and tested before it may decide, and anything
// refused leaves the last good set deciding.
func TestBundleFileReload(t *testing.T) {
	s := rsaSigner(t, "RS256")
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeBundleFile(t, path, goodBundle(t, s, "v1"))
	be, _ := newBundleEngine(t, s.config(path), true)
	rev := be.e.Revision()
	if got := be.reason(t); got != "v1" {
		t.Fatalf("decision = %q, want v1", got)
	}
	if got := be.e.Active().Source().BundleRevision(); got != "rev-v1" {
		t.Errorf("BundleRevision() = %q, want rev-v1", got)
	}
	if !strings.Contains(be.logs.String(), "bundle_revision=rev-v1") {
		t.Errorf("no log line names the manifest revision:\n%s", be.logs)
	}

	be.reload(t, ReloadUnchanged, "v1")
	// A valid signed bundle whose own tests fail never takes effect.
	writeBundleFile(t, path, failingBundle(t, s))
	be.reload(t, ReloadTestFailure, "v1")
	writeBundleFile(t, path, goodBundle(t, bundleKey{}, "unsigned"))
	if ev := be.reload(t, ReloadReadError, "v1"); !strings.Contains(ev.Err.Error(), "missing .signatures.json") {
		t.Errorf("unsigned bundle: %v", ev.Err)
	}
	writeBundleFile(t, path, goodBundle(t, ecSigner(t), "other key"))
	be.reload(t, ReloadReadError, "v1")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	be.reload(t, ReloadReadError, "v1")
	if be.e.Revision() != rev {
		t.Errorf("revision %s, want %s still", be.e.Revision(), rev)
	}

	writeBundleFile(t, path, goodBundle(t, s, "v2"))
	ev := be.reload(t, ReloadSuccess, "v2")
	if ev.Previous != rev || ev.Tests == nil || ev.Tests.Passed != 1 {
		t.Errorf("reload event = %+v, want a switch from %s with one passing test", ev, rev)
	}
}

// A bundle that fails at start-up leaves no set: the gateway does not
// start.
func TestBundleLoadRefused(t *testing.T) {
	s := ecSigner(t)
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeBundleFile(t, path, goodBundle(t, bundleKey{}, "unsigned"))
	be, err := newBundleEngine(t, s.config(path), false)
	if err == nil || be.e.Active() != nil {
		t.Fatalf("Load(unsigned) = %v, active %v; want a refusal and no set", err, be.e.Active())
	}
}

// The manifest's roots bound what the bundle may hold; a bundle whose
// roots leave out the entrypoint's package cannot define it.
func TestBundleRoots(t *testing.T) {
	s := ecSigner(t)
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	tests := []struct {
		name    string
		modules map[string]string
		data    string // the only top-level key of the data
		roots   []string
		result  string
		detail  string
	}{
		{"policy outside the roots", map[string]string{"authz.rego": bundlePolicy}, "other", []string{"other"}, ReloadReadError,
			"manifest roots [other] do not permit 'package crmgate.authz'"},
		{"data outside the roots", map[string]string{"other.rego": "package other\n\nx := 1\n"}, "crmgate", []string{"other"}, ReloadReadError,
			"manifest roots [other] do not permit data at path '/crmgate'"},
		{"entrypoint outside the roots", map[string]string{"other.rego": "package other\n\nx := 1\n"}, "other", []string{"other"}, ReloadCompileError,
			"entrypoint data.crmgate.authz.decision: no rule defines it"},
		{"roots cover the entrypoint", map[string]string{"authz.rego": bundlePolicy}, "crmgate", []string{"crmgate"}, ReloadSuccess, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeBundleFile(t, path, opaBundle(t, s, tt.modules, map[string]any{tt.data: map[string]any{"reason": "r"}}, "r", tt.roots...))
			var got ReloadEvent
			cfg := Config{Bundle: &BundleConfig{File: path, PublicKey: secret.FromValue(s.pub), Algorithm: "ES256"}}
			cfg.Defaults()
			e, err := New(cfg, Options{OnReload: func(ev ReloadEvent) { got = ev }})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Load(context.Background())
			if got.Result != tt.result || (tt.detail != "" && (err == nil || !strings.Contains(err.Error(), tt.detail))) {
				t.Errorf("Load = %s, %v; want %s mentioning %q", got.Result, err, tt.result, tt.detail)
			}
		})
	}
}

// Without verification any bundle loads, and every load says so.
func TestBundleInsecure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeBundleFile(t, path, goodBundle(t, bundleKey{}, "v1"))
	be, _ := newBundleEngine(t, BundleConfig{File: path, InsecureSkipVerify: true}, true)
	writeBundleFile(t, path, goodBundle(t, bundleKey{}, "v2"))
	be.reload(t, ReloadSuccess, "v2")
	if n := strings.Count(be.logs.String(), "WITHOUT signature verification"); n != 2 {
		t.Errorf("%d warnings for 2 loads without verification:\n%s", n, be.logs)
	}
}

// Replacing the bundle file, atomically or in place, reloads it.
func TestWatchBundleFile(t *testing.T) {
	s := ecSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.tar.gz")
	writeBundleFile(t, path, goodBundle(t, s, "v1"))
	be, _ := newBundleEngine(t, s.config(path), true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- be.e.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	time.Sleep(50 * time.Millisecond)

	next := func(want string) ReloadEvent {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case ev := <-be.events:
				if ev.Result == want {
					return ev
				}
				t.Logf("reload: %s %v (waiting for %s)", ev.Result, ev.Err, want)
			case <-timeout:
				t.Fatalf("no reload with result %s within 5s", want)
			}
		}
	}
	writeBundleFile(t, path, goodBundle(t, s, "v2"))
	next(ReloadSuccess)
	if got := be.reason(t); got != "v2" {
		t.Errorf("after an atomic replacement, decision = %q, want v2", got)
	}
	if err := os.WriteFile(path, goodBundle(t, s, "v3"), 0o644); err != nil {
		t.Fatal(err)
	}
	next(ReloadSuccess)
	if got := be.reason(t); got != "v3" {
		t.Errorf("after a write in place, decision = %q, want v3", got)
	}
	// Other files of the folder are not the bundle.
	writeFiles(t, dir, map[string]string{"other.tar.gz": "not watched"})
	select {
	case ev := <-be.events:
		t.Errorf("a write to another file reloaded: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// bundleServer serves a bundle over HTTPS with an ETag, answering 304 to
// a matching If-None-Match.
type bundleServer struct {
	srv    *httptest.Server
	caFile string
	body   atomic.Pointer[[]byte]
	status atomic.Int32 // non-zero: answer with it
	delay  atomic.Int64 // nanoseconds before answering
	// chunked answers without Content-Length.
	chunked            atomic.Bool
	token              string
	gets, notModified  atomic.Int32
	lastIfNoneMatchSet atomic.Bool
}

func newBundleServer(t *testing.T, tlsOn bool, body []byte) *bundleServer {
	t.Helper()
	bs := &bundleServer{}
	bs.body.Store(&body)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bs.gets.Add(1)
		if bs.token != "" && r.Header.Get("Authorization") != "Bearer "+bs.token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if d := time.Duration(bs.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if st := bs.status.Load(); st != 0 {
			http.Error(w, "failure", int(st))
			return
		}
		b := *bs.body.Load()
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		bs.lastIfNoneMatchSet.Store(r.Header.Get("If-None-Match") != "")
		if r.Header.Get("If-None-Match") == etag {
			bs.notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Content-Type", "application/gzip")
		if bs.chunked.Load() {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		}
		w.Write(b)
	})
	bs.srv = httptest.NewUnstartedServer(h)
	// Handshakes refused on purpose are not news.
	bs.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		bs.srv.StartTLS()
		bs.caFile = filepath.Join(t.TempDir(), "ca.pem")
		pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bs.srv.Certificate().Raw})
		if err := os.WriteFile(bs.caFile, pemCert, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		bs.srv.Start()
	}
	t.Cleanup(bs.srv.Close)
	return bs
}

func (bs *bundleServer) serve(b []byte) { bs.body.Store(&b) }

func (bs *bundleServer) config(s bundleKey) BundleConfig {
	return BundleConfig{
		URL:       bs.srv.URL + "/bundles/crm.tar.gz",
		CAFile:    bs.caFile,
		PublicKey: secret.FromValue(s.pub),
		Algorithm: s.alg,
	}
}

// The active revision follows the URL through good, bad and good
// bundles: good, stays good, the new good. An unmodified bundle is not
// downloaded again.
func TestBundleURL(t *testing.T) {
	s := ecSigner(t)
	bs := newBundleServer(t, true, goodBundle(t, s, "v1"))
	be, _ := newBundleEngine(t, bs.config(s), true)
	rev1 := be.e.Revision()
	if got := be.reason(t); got != "v1" {
		t.Fatalf("decision = %q, want v1", got)
	}

	ev := be.reload(t, ReloadUnchanged, "v1")
	if bs.notModified.Load() != 1 || ev.Revision != rev1 {
		t.Errorf("unmodified bundle: %d 304 answers, revision %s; want 1 and %s", bs.notModified.Load(), ev.Revision, rev1)
	}

	bs.serve(failingBundle(t, s))
	be.reload(t, ReloadTestFailure, "v1")
	// The refused bundle is what the server holds: asked again, it is
	// refused again, not mistaken for the active set.
	be.reload(t, ReloadTestFailure, "v1")

	bs.serve([]byte("<html>maintenance</html>"))
	be.reload(t, ReloadReadError, "v1")
	bs.serve(goodBundle(t, ecSigner(t), "forged"))
	be.reload(t, ReloadReadError, "v1")
	bs.status.Store(http.StatusInternalServerError)
	if ev := be.reload(t, ReloadReadError, "v1"); !strings.Contains(ev.Err.Error(), "500 Internal Server Error") {
		t.Errorf("500: %v", ev.Err)
	}
	bs.status.Store(0)

	bs.serve(goodBundle(t, s, "v2"))
	ev = be.reload(t, ReloadSuccess, "v2")
	if ev.Previous != rev1 || be.e.Active().Source().BundleRevision() != "rev-v2" {
		t.Errorf("reload event = %+v, bundle revision %q", ev, be.e.Active().Source().BundleRevision())
	}
	be.reload(t, ReloadUnchanged, "v2")
	if !bs.lastIfNoneMatchSet.Load() {
		t.Errorf("the last fetch sent no If-None-Match")
	}
}

// Every failure to fetch is a read error: at start-up, no set.
func TestBundleURLFailures(t *testing.T) {
	s := ecSigner(t)
	good := goodBundle(t, s, "v1")
	// Random data does not compress: this bundle is over 1024 bytes.
	noise := make([]byte, 2048)
	rand.Read(noise)
	large := goodBundle(t, s, base64.StdEncoding.EncodeToString(noise))
	tests := []struct {
		name   string
		setup  func(*bundleServer, *BundleConfig)
		detail string
	}{
		{"a certificate of an unknown CA", func(_ *bundleServer, c *BundleConfig) { c.CAFile = "" }, "certificate"},
		{"a CA file that is missing", func(_ *bundleServer, c *BundleConfig) { c.CAFile = "/nonexistent/ca.pem" }, "CA file"},
		{"a timeout", func(bs *bundleServer, c *BundleConfig) {
			bs.delay.Store(int64(5 * time.Second))
			c.Timeout = 200 * time.Millisecond
		}, "Timeout"},
		{"larger than max_bytes", func(bs *bundleServer, c *BundleConfig) {
			bs.serve(large)
			c.MaxBytes = 1024
		}, "bytes, larger than max_bytes (1024)"},
		{"larger than max_bytes without Content-Length", func(bs *bundleServer, c *BundleConfig) {
			bs.serve(large)
			bs.chunked.Store(true)
			c.MaxBytes = 1024
		}, ": larger than max_bytes (1024)"},
		{"not found", func(bs *bundleServer, _ *BundleConfig) { bs.status.Store(http.StatusNotFound) }, "404 Not Found"},
		{"a bearer token missing", func(bs *bundleServer, _ *BundleConfig) { bs.token = "t0k3n-Zq8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0G" }, "401 Unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs := newBundleServer(t, true, good)
			c := bs.config(s)
			tt.setup(bs, &c)
			start := time.Now()
			be, err := newBundleEngine(t, c, false)
			if err == nil || !strings.Contains(err.Error(), tt.detail) || be.e.Active() != nil {
				t.Errorf("Load = %v, want a read error mentioning %q and no set", err, tt.detail)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("Load took %s", el)
			}
		})
	}
	t.Run("a bearer token sent", func(t *testing.T) {
		bs := newBundleServer(t, true, good)
		bs.token = "t0k3n-Zq8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0G"
		c := bs.config(s)
		c.BearerToken = secret.FromValue([]byte(bs.token))
		newBundleEngine(t, c, true)
	})
	t.Run("http on loopback", func(t *testing.T) {
		bs := newBundleServer(t, false, good)
		newBundleEngine(t, bs.config(s), true)
	})
	t.Run("a redirect from https to http", func(t *testing.T) {
		// The plain server is a local service the https server points
		// the gateway at; it even serves a good bundle.
		local := newBundleServer(t, false, good)
		redirector := httptest.NewTLSServer(http.RedirectHandler(local.srv.URL+"/bundles/crm.tar.gz", http.StatusFound))
		t.Cleanup(redirector.Close)
		c := local.config(s)
		c.URL = redirector.URL + "/bundle.tar.gz"
		c.CAFile = filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(c.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: redirector.Certificate().Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		be, err := newBundleEngine(t, c, false)
		if err == nil || !strings.Contains(err.Error(), "from https to http") || be.e.Active() != nil {
			t.Errorf("Load = %v, want the downgrade refused", err)
		}
		if local.gets.Load() != 0 {
			t.Errorf("the local service was called %d times", local.gets.Load())
		}
	})
}

// A URL is polled, and what it serves takes effect when it changes.
func TestWatchBundleURL(t *testing.T) {
	s := ecSigner(t)
	bs := newBundleServer(t, true, goodBundle(t, s, "v1"))
	c := bs.config(s)
	c.Defaults()
	// Faster than configuration allows, to keep the test short.
	c.PollInterval = 30 * time.Millisecond
	cfg := Config{Bundle: &c}
	cfg.Defaults()
	events := make(chan ReloadEvent, 64)
	e, err := New(cfg, Options{OnReload: func(ev ReloadEvent) { events <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-events
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Watch(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("Watch did not return when its context ended")
		}
	}()

	timeout := time.After(5 * time.Second)
	for ev := range events {
		if ev.Result == ReloadUnchanged {
			break
		}
		t.Fatalf("poll of an unchanged bundle: %+v", ev)
	}
	bs.serve(goodBundle(t, s, "v2"))
	for {
		select {
		case ev := <-events:
			if ev.Result == ReloadSuccess {
				if got := e.Active().Source().BundleRevision(); got != "rev-v2" {
					t.Errorf("active bundle revision %q, want rev-v2", got)
				}
				return
			}
		case <-timeout:
			t.Fatal("the new bundle did not take effect within 5s")
		}
	}
}

// A bundle mounted from a Kubernetes ConfigMap or Secret is a link
// through ..data, which the kubelet swaps atomically to a new folder.
func TestWatchBundleFileConfigMap(t *testing.T) {
	s := ecSigner(t)
	dir := t.TempDir()
	version := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bundle.tar.gz"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		// The kubelet's swap: a new link renamed over ..data.
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01_02_v1", goodBundle(t, s, "v1"))
	path := filepath.Join(dir, "bundle.tar.gz")
	if err := os.Symlink(filepath.Join("..data", "bundle.tar.gz"), path); err != nil {
		t.Fatal(err)
	}
	be, _ := newBundleEngine(t, s.config(path), true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- be.e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	time.Sleep(50 * time.Millisecond)

	version("..2026_01_03_v2", goodBundle(t, s, "v2"))
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-be.events:
			if ev.Result == ReloadSuccess {
				if got := be.reason(t); got != "v2" {
					t.Errorf("after the swap, decision = %q, want v2", got)
				}
				return
			}
		case <-timeout:
			t.Fatal("the swapped bundle did not take effect within 5s")
		}
	}
}
