package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/scope"
)

// Results of a reload attempt, the result label of
// crmgate_policy_reload_total.
const (
	// ReloadSuccess: a new set compiled, passed its tests and is active.
	ReloadSuccess = "success"
	// ReloadUnchanged: the folder holds the active set already.
	ReloadUnchanged = "unchanged"
	// ReloadReadError: the folder could not be read.
	ReloadReadError = "read_error"
	// ReloadCompileError: the set (or its tests) does not compile.
	ReloadCompileError = "compile_error"
	// ReloadTestFailure: the set compiles but its tests do not pass.
	ReloadTestFailure = "test_failure"
)

// Options are the engine's (and Remote's) collaborators.
type Options struct {
	// Logger receives reload outcomes; nil discards them.
	Logger *slog.Logger
	// Now is the clock that stamps inputs whose scope has no start time;
	// nil means time.Now.
	Now func() time.Time
	// Registerer receives the engine's metrics; nil registers none. The
	// metric names are fixed, so a second engine in the same process (a
	// candidate set) is given nil or a registry of its own.
	Registerer prometheus.Registerer
	// OnReload, if set, is called after every reload attempt, on the
	// goroutine that reloaded, while reloads are held: the seam for audit
	// events. It must not call Load or Reload.
	OnReload func(ReloadEvent)
}

// ReloadEvent reports one attempt to load the policy folder.
type ReloadEvent struct {
	// Result is one of the Reload constants.
	Result string
	// Revision is the revision of the folder's (or bundle's) content;
	// empty when it could not be read.
	Revision string
	// BundleRevision is the revision the bundle's manifest states; empty
	// for a folder.
	BundleRevision string
	// Previous is the revision that was active before the attempt; empty
	// at the first load.
	Previous string
	// Active is the revision active after the attempt.
	Active string
	// Tests is the outcome of the set's tests, when they ran.
	Tests *TestReport
	// Err says why the set was refused: a *CompileError, a
	// *TestFailedError or a read error. Nil on success.
	Err error
	// Elapsed is how long the attempt took.
	Elapsed time.Duration
}

// Engine decides requests with the active policy set and replaces that set
// when the folder changes (see Watch), keeping the last good one whenever
// a new one does not compile or does not pass its tests. It is safe for
// concurrent use.
type Engine struct {
	cfg      Config
	log      *slog.Logger
	inputs   *InputBuilder
	onReload func(ReloadEvent)
	reloads  *prometheus.CounterVec
	reused   *prometheus.CounterVec
	metrics  *decisionMetrics
	// read returns the current content of the configured source: the
	// folder (ReadSource) or the bundle (bundleLoader).
	read func(ctx context.Context) (*Source, error)

	active atomic.Pointer[Set]

	// mu serializes loads; entrypoints is what they prepare.
	mu          sync.Mutex
	entrypoints []string
}

// New returns an engine for cfg, which must have passed Defaults and
// Validate (and, with a bundle, had its secret references resolved). It
// reads nothing, not even a bundle's CA file: Load does. It fails only
// when the metrics cannot be registered.
func New(cfg Config, o Options) (*Engine, error) {
	e := &Engine{
		cfg:      cfg,
		log:      o.Logger,
		inputs:   NewInputBuilder(cfg.Headers, o.Now),
		onReload: o.OnReload,
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_decision_reuse_total",
			Help: "Decisions of sets that allow reuse, by result: hit (an identical input's decision of the same second was reused), miss (evaluated).",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_reload_total",
			Help: "Attempts to load the policy folder or bundle, by result: success, unchanged, read_error, compile_error, test_failure.",
		}, []string{"result"}),
		metrics: newDecisionMetrics(ModeEmbedded),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Bundle != nil {
		l := newBundleLoader(*cfg.Bundle, e.log)
		e.read = l.read
		// Reload and watch logs name the bundle, as they name a folder.
		e.log = e.log.With(slog.String("bundle", l.location))
	} else {
		e.read = func(context.Context) (*Source, error) { return ReadSource(cfg.Dir) }
	}
	for _, r := range []string{ReloadSuccess, ReloadUnchanged, ReloadReadError, ReloadCompileError, ReloadTestFailure} {
		e.reloads.WithLabelValues(r)
	}
	e.reused.WithLabelValues(reuseHit)
	e.reused.WithLabelValues(reuseMiss)
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{e.reloads, e.reused} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("policy metrics: %w", err)
			}
		}
	}
	if err := e.metrics.register(o.Registerer); err != nil {
		return nil, err
	}
	return e, nil
}

// Load reads and compiles the policy folder, runs its tests and makes it
// the active set. It prepares the default entrypoint and the given ones
// (those the routes name); Decide denies any other. Later reloads prepare
// the same entrypoints. On error the previously active set, if any, stays.
func (e *Engine) Load(ctx context.Context, entrypoints ...string) error {
	eps := []string{e.cfg.Entrypoint}
	for _, ep := range entrypoints {
		if ep != "" && !slices.Contains(eps, ep) {
			eps = append(eps, ep)
		}
	}
	e.mu.Lock()
	e.entrypoints = eps
	e.mu.Unlock()
	ev := e.Reload(ctx)
	return ev.Err
}

// Reload reads the folder again and makes it active if it differs from the
// active set, compiles, and passes its tests; otherwise the active set
// stays. The attempt is logged, counted and reported to Options.OnReload.
func (e *Engine) Reload(ctx context.Context) ReloadEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	start := time.Now()
	ev := e.reload(ctx)
	ev.Elapsed = time.Since(start)
	if a := e.active.Load(); a != nil {
		ev.Active = a.Revision()
	}
	e.report(ctx, ev)
	return ev
}

func (e *Engine) reload(ctx context.Context) ReloadEvent {
	var ev ReloadEvent
	prev := e.active.Load()
	if prev != nil {
		ev.Previous = prev.Revision()
	}
	if len(e.entrypoints) == 0 {
		ev.Result, ev.Err = ReloadCompileError, errors.New("policy: Reload before Load")
		return ev
	}
	src, err := e.read(ctx)
	if err != nil {
		ev.Result, ev.Err = ReloadReadError, err
		return ev
	}
	ev.Revision, ev.BundleRevision = src.Revision(), src.BundleRevision()
	if prev != nil && prev.Revision() == src.Revision() && slices.Equal(prev.asked, e.entrypoints) {
		ev.Result = ReloadUnchanged
		return ev
	}
	set, err := Compile(ctx, src, e.entrypoints)
	if err != nil {
		ev.Result, ev.Err = ReloadCompileError, err
		return ev
	}
	set.asked = slices.Clone(e.entrypoints)
	tctx, cancel := context.WithTimeout(ctx, e.cfg.TestTimeout)
	defer cancel()
	rep, err := set.Test(tctx, e.cfg.TestTimeout)
	ev.Tests = rep
	var ce *CompileError
	switch {
	case errors.As(err, &ce):
		ev.Result, ev.Err = ReloadCompileError, err
		return ev
	case err != nil:
		ev.Result, ev.Err = ReloadTestFailure, err
		return ev
	case !rep.OK():
		ev.Result, ev.Err = ReloadTestFailure, &TestFailedError{Dir: src.Dir, Report: rep}
		return ev
	}
	if e.cfg.Reuse == ReuseOn {
		if len(set.nondet) > 0 {
			e.log.Info("policy decisions are not reused", "reason", reuseNote(set.nondet))
		} else {
			set.reuse = newReuse(e.cfg.ReuseEntries)
		}
	}
	e.active.Store(set)
	ev.Result = ReloadSuccess
	return ev
}

func (e *Engine) report(ctx context.Context, ev ReloadEvent) {
	e.reloads.WithLabelValues(ev.Result).Inc()
	attrs := []slog.Attr{
		slog.String("result", ev.Result),
		slog.String("revision", ev.Revision),
		slog.String("previous", ev.Previous),
		slog.String("active", ev.Active),
		slog.Duration("elapsed", ev.Elapsed),
	}
	if e.cfg.Bundle == nil {
		attrs = append(attrs, slog.String("dir", e.cfg.Dir))
	} else if ev.BundleRevision != "" {
		attrs = append(attrs, slog.String("bundle_revision", ev.BundleRevision))
	}
	if ev.Tests != nil {
		attrs = append(attrs, slog.Int("tests_passed", ev.Tests.Passed))
	}
	switch ev.Result {
	case ReloadSuccess:
		e.log.LogAttrs(ctx, slog.LevelInfo, "policy set active", attrs...)
	case ReloadUnchanged:
		e.log.LogAttrs(ctx, slog.LevelDebug, "policy set unchanged", attrs...)
	default:
		attrs = append(attrs, slog.String("err", ev.Err.Error()))
		msg := "policy set refused; the active set stays"
		if ev.Active == "" {
			msg = "policy set refused; no set is active"
		}
		e.log.LogAttrs(ctx, slog.LevelError, msg, attrs...)
	}
	if e.onReload != nil {
		e.onReload(ev)
	}
}

// Active returns the active set, nil before a successful Load.
func (e *Engine) Active() *Set { return e.active.Load() }

// Revision is the active set's revision, empty before a successful Load.
func (e *Engine) Revision() string {
	if s := e.active.Load(); s != nil {
		return s.Revision()
	}
	return ""
}

// Input builds the input of a request with the engine's header allow-list;
// see InputBuilder.Build.
func (e *Engine) Input(s *scope.Scope, r *http.Request) *Input {
	return e.inputs.Build(s, r)
}

// Decide evaluates entrypoint ("" for the default) of the active set on in,
// within Config.EvalTimeout. It never fails open: without an active set,
// for an entrypoint Load did not prepare, and on any failure of the policy
// it denies with one of the Reason constants.
func (e *Engine) Decide(ctx context.Context, in *Input, entrypoint string) Decision {
	if entrypoint == "" {
		entrypoint = e.cfg.Entrypoint
	}
	var d Decision
	if s := e.active.Load(); s != nil {
		d = e.decideSet(ctx, s, in, entrypoint)
	} else {
		d = deny(ReasonNotLoaded, errors.New("no policy set is loaded"))
		d.Entrypoint = entrypoint
	}
	e.metrics.observe(&d)
	return d
}

// decideSet is s's decision, reused when an identical input's of the same
// second is kept (see reuse.go).
func (e *Engine) decideSet(ctx context.Context, s *Set, in *Input, entrypoint string) Decision {
	if s.reuse == nil || in == nil || in.err != nil {
		return s.Decide(ctx, in, entrypoint, e.cfg.EvalTimeout)
	}
	start := time.Now()
	var k reuseKey
	if !keyOf(in, entrypoint, &k) {
		return s.Decide(ctx, in, entrypoint, e.cfg.EvalTimeout)
	}
	sec := in.Request.Time.Unix()
	if d, ok := s.reuse.get(&k, sec); ok {
		e.reused.WithLabelValues(reuseHit).Inc()
		d.Elapsed = time.Since(start)
		d.Reused = true
		return d
	}
	e.reused.WithLabelValues(reuseMiss).Inc()
	d := s.Decide(ctx, in, entrypoint, e.cfg.EvalTimeout)
	if !d.Failed() {
		s.reuse.put(&k, sec, d)
	}
	return d
}

// Labels of crmgate_policy_decision_reuse_total.
const (
	reuseHit  = "hit"
	reuseMiss = "miss"
)
