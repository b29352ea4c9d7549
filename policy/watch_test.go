package policy

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// policyV returns a policy that answers with reason r.
func policyV(r string) string {
	return "package w\n\ndecision := {\"allow\": true, \"reason\": \"" + r + "\"}\n"
}

const goodTest = `package w_test

import data.w

test_allows if w.decision.allow
`

// watched starts an engine on a temporary folder holding v1 and watches
// it; events receives every reload after the first.
type watched struct {
	dir    string
	e      *Engine
	reg    *prometheus.Registry
	events chan ReloadEvent
}

func startWatch(t *testing.T) *watched {
	t.Helper()
	w := &watched{dir: t.TempDir(), reg: prometheus.NewRegistry(), events: make(chan ReloadEvent, 64)}
	writeFiles(t, w.dir, map[string]string{"w.rego": policyV("v1"), "w_test.rego": goodTest})
	var loaded atomic.Bool
	w.e = newEngine(t, testConfig(w.dir, "data.w.decision"), Options{
		Registerer: w.reg,
		OnReload: func(ev ReloadEvent) {
			if loaded.Load() {
				w.events <- ev
			}
		},
	})
	loaded.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.e.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	// Give the watcher time to register before the test writes.
	time.Sleep(50 * time.Millisecond)
	return w
}

func (w *watched) reason(t testing.TB) string {
	s := reqScope("GET", "/", "any", nil)
	d := w.e.Decide(context.Background(), w.e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
	if !d.Allow || d.Failed() {
		t.Fatalf("Decide = %+v, want the active set's allow", d)
	}
	return d.Reason
}

// next waits for the next reload event with result want, skipping others.
func (w *watched) next(t *testing.T, want string) ReloadEvent {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-w.events:
			if ev.Result == want {
				return ev
			}
			t.Logf("reload: %s (waiting for %s)", ev.Result, want)
		case <-timeout:
			t.Fatalf("no reload with result %s within 5s", want)
		}
	}
}

func (w *watched) count(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "crmgate_policy_reload_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("crmgate_policy_reload_total{result=%q} not found", result)
	return 0
}

func TestWatchGoodSetTakesEffect(t *testing.T) {
	w := startWatch(t)
	rev1 := w.e.Revision()
	if got := w.reason(t); got != "v1" {
		t.Fatalf("first decision = %q, want v1", got)
	}
	start := time.Now()
	writeFiles(t, w.dir, map[string]string{"w.rego": policyV("v2")})
	for w.reason(t) != "v2" {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the new policy did not take effect within 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("new policy in effect after %s", time.Since(start))
	ev := w.next(t, ReloadSuccess)
	if ev.Previous != rev1 || ev.Active == rev1 || ev.Active != w.e.Revision() || ev.Tests == nil || ev.Tests.Passed != 1 {
		t.Errorf("reload event = %+v, want a switch from %s with one passing test", ev, rev1)
	}
	if got := w.count(t, ReloadSuccess); got != 2 {
		t.Errorf("reload_total{success} = %v, want 2 (load and reload)", got)
	}
}

// A policy that does not compile, or whose own tests fail, never takes
// effect, not even for one request: the last good set keeps deciding.
func TestWatchBrokenSetNeverTakesEffect(t *testing.T) {
	w := startWatch(t)
	rev := w.e.Revision()

	// Decide continuously while the folder is broken in several ways.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	bad := make(chan string, 1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := reqScope("GET", "/", "any", nil)
			d := w.e.Decide(context.Background(), w.e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
			if d.Reason != "v1" || d.Revision != rev {
				select {
				case bad <- d.Reason + " " + d.Revision:
				default:
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()

	writeFiles(t, w.dir, map[string]string{"w.rego": "package w\n\ndecision := {\"allow\": true,\n"})
	ev := w.next(t, ReloadCompileError)
	if ev.Active != rev || ev.Err == nil {
		t.Errorf("compile error event = %+v, want the active set kept and an error", ev)
	}

	// Compiles, but its tests fail.
	writeFiles(t, w.dir, map[string]string{"w.rego": "package w\n\ndecision := {\"allow\": false, \"reason\": \"v2\"}\n"})
	ev = w.next(t, ReloadTestFailure)
	if ev.Active != rev || ev.Tests == nil || ev.Tests.Failed != 1 {
		t.Errorf("test failure event = %+v, want the active set kept and one failed test", ev)
	}

	// A set that no longer defines the entrypoint is refused when it is
	// compiled.
	writeFiles(t, w.dir, map[string]string{"w.rego": "package w\n\nallow := true\n", "w_test.rego": "package w_test\n"})
	w.next(t, ReloadCompileError)

	close(stop)
	wg.Wait()
	select {
	case got := <-bad:
		t.Fatalf("a refused set decided: %s", got)
	default:
	}
	if w.e.Revision() != rev || w.reason(t) != "v1" {
		t.Errorf("active revision = %s, want %s still", w.e.Revision(), rev)
	}
	if w.count(t, ReloadCompileError) < 2 || w.count(t, ReloadTestFailure) < 1 {
		t.Errorf("reload_total{compile_error} = %v, {test_failure} = %v, want >= 2 and >= 1",
			w.count(t, ReloadCompileError), w.count(t, ReloadTestFailure))
	}

	// Fixing the folder recovers.
	writeFiles(t, w.dir, map[string]string{"w.rego": policyV("v3"), "w_test.rego": goodTest})
	w.next(t, ReloadSuccess)
	if got := w.reason(t); got != "v3" {
		t.Errorf("after the fix, decision = %q, want v3", got)
	}
}

func TestWatchUnchangedAndNewFolders(t *testing.T) {
	w := startWatch(t)
	rev := w.e.Revision()
	// Rewriting the same bytes is not a new set.
	writeFiles(t, w.dir, map[string]string{"w.rego": policyV("v1")})
	w.next(t, ReloadUnchanged)
	if w.e.Revision() != rev {
		t.Errorf("revision changed on identical content")
	}
	// Files in a folder created after the watch started are seen, data
	// included, placed under data by their folder.
	writeFiles(t, w.dir, map[string]string{
		"w.rego":          "package w\n\ndecision := {\"allow\": true, \"reason\": data.sub.reason}\n",
		"sub/data.json":   `{"reason": "from sub"}`,
		"sub/.hidden.swp": "not a policy",
	})
	w.next(t, ReloadSuccess)
	if got := w.reason(t); got != "from sub" {
		t.Errorf("decision = %q, want the data of the new folder", got)
	}
	writeFiles(t, w.dir, map[string]string{"sub/data.json": `{"reason": "changed in sub"}`})
	w.next(t, ReloadSuccess)
	if got := w.reason(t); got != "changed in sub" {
		t.Errorf("decision = %q, want the changed data of the new folder", got)
	}
	// Removing a file is a change too.
	if err := os.Remove(filepath.Join(w.dir, "w_test.rego")); err != nil {
		t.Fatal(err)
	}
	ev := w.next(t, ReloadSuccess)
	if ev.Tests == nil || ev.Tests.Total() != 0 {
		t.Errorf("after removing the tests, event = %+v, want no tests run", ev)
	}
}

func TestWatchOff(t *testing.T) {
	cfg := testConfig("testdata/basic", "data.fixture.decision")
	cfg.Reload = ReloadOff
	e := newEngine(t, cfg, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Watch(ctx); err != nil {
		t.Errorf("Watch(reload off) = %v, want nil when ctx ends", err)
	}
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig("testdata/basic", "data.fixture.decision")
	if _, err := New(cfg, Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Options{Registerer: reg}); err == nil {
		t.Error("a second engine on the same registerer: no error, want a duplicate registration error")
	}
}
