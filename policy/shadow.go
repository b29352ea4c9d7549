package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/fielderr"
)

// Defaults of ShadowConfig.
const (
	DefaultShadowQueue = 1024
)

// ShadowConfig configures shadow mode: a candidate policy set decides the
// same requests as the active one, without enforcing anything, so that a
// change can be judged on live traffic before it is promoted.
type ShadowConfig struct {
	Dir    string  `yaml:"dir" jsonschema_description:"Folder of the candidate policy set, laid out like the active one. It is compiled, tested and hot-reloaded like the active set (same entrypoints, deadline, debounce and test timeout) but never enforced. Required."`
	Sample float64 `yaml:"sample" jsonschema_description:"Fraction of requests (0 < sample <= 1) whose decision is compared with the candidate's. Default 1: every request."`
	Queue  int     `yaml:"queue" jsonschema_description:"Requests waiting for a candidate decision. The candidate is evaluated off the request path; when the queue is full a comparison is skipped and counted (result dropped), never waited for. Default 1024."`
}

// Defaults fills unset fields with their defaults.
func (c *ShadowConfig) Defaults() {
	if c.Sample == 0 {
		c.Sample = 1
	}
	if c.Queue == 0 {
		c.Queue = DefaultShadowQueue
	}
}

// Validate reports every problem of the configuration at once; active is
// the folder of the active set, which the candidate must not be.
func (c ShadowConfig) Validate(active string) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fielderr.New(path, format, args...)) }
	switch {
	case c.Dir == "":
		add("dir", "required: the folder of the candidate policy set")
	case active != "" && samePath(c.Dir, active):
		add("dir", "%q is the active set's folder; the candidate must be a copy being changed", c.Dir)
	}
	if !(c.Sample > 0 && c.Sample <= 1) {
		add("sample", "must be above 0 and at most 1, got %v", c.Sample)
	}
	if c.Queue < 1 || c.Queue > 1<<20 {
		add("queue", "must be between 1 and 1048576, got %d", c.Queue)
	}
	return errors.Join(errs...)
}

// Results of a shadow comparison, the result label of
// crmgate_policy_shadow_decisions_total.
const (
	// ShadowAgree: the candidate decided exactly as the active set.
	ShadowAgree = "agree"
	// ShadowDisagree: the decisions differ in a field the gateway
	// enforces (see Differences).
	ShadowDisagree = "disagree"
	// ShadowDropped: the comparison was skipped because the queue was
	// full or no candidate set is loaded.
	ShadowDropped = "dropped"
)

// Shadow evaluates a candidate policy set on the inputs the active set
// decides, off the request path, and reports every disagreement: counted
// by kind (crmgate_policy_shadow_disagreements_total) and logged with both
// decisions. It never changes what is enforced.
type Shadow struct {
	cfg       ShadowConfig
	candidate *Engine
	log       *slog.Logger
	queue     chan shadowJob

	decisions     *prometheus.CounterVec
	disagreements *prometheus.CounterVec
	reloads       *prometheus.CounterVec

	// pending counts queued comparisons, for tests.
	pending sync.WaitGroup
}

type shadowJob struct {
	in         *Input
	entrypoint string
	active     Decision
}

// NewShadow returns the shadow of an engine configured by main, with the
// candidate in cfg (which must have passed Defaults and Validate). The
// candidate uses main's entrypoint, deadline, reload mode, debounce and
// test timeout. Load the candidate with Load before Compare; Run evaluates
// the queued comparisons.
func NewShadow(main Config, cfg ShadowConfig, o Options) (*Shadow, error) {
	ccfg := main
	ccfg.Dir, ccfg.Bundle, ccfg.Shadow = cfg.Dir, nil, nil
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sh := &Shadow{
		cfg:   cfg,
		log:   log,
		queue: make(chan shadowJob, cfg.Queue),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_shadow_decisions_total",
			Help: "Decisions of the active policy set compared with the candidate set's, by result: agree, disagree, dropped (queue full or no candidate loaded).",
		}, []string{"result"}),
		disagreements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_shadow_disagreements_total",
			Help: "Disagreements of the candidate policy set with the active one, by kind: deny_to_allow (the candidate would allow what is denied), allow_to_deny, obligations (both allow, with different redactions, filters, tiers, headers, audit or session action), failed (the candidate gave no valid decision).",
		}, []string{"kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmgate_policy_shadow_reload_total",
			Help: "Attempts to load the candidate policy folder, by result: success, unchanged, read_error, compile_error, test_failure.",
		}, []string{"result"}),
	}
	for _, r := range []string{ShadowAgree, ShadowDisagree, ShadowDropped} {
		sh.decisions.WithLabelValues(r)
	}
	for _, k := range []string{DisagreeDenyToAllow, DisagreeAllowToDeny, DisagreeObligations, DisagreeFailed} {
		sh.disagreements.WithLabelValues(k)
	}
	for _, r := range []string{ReloadSuccess, ReloadUnchanged, ReloadReadError, ReloadCompileError, ReloadTestFailure} {
		sh.reloads.WithLabelValues(r)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{sh.decisions, sh.disagreements, sh.reloads} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("policy shadow metrics: %w", err)
			}
		}
	}
	onReload := o.OnReload
	candidate, err := New(ccfg, Options{
		Logger: log.With("set", "candidate"),
		Now:    o.Now,
		OnReload: func(ev ReloadEvent) {
			sh.reloads.WithLabelValues(ev.Result).Inc()
			if onReload != nil {
				onReload(ev)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	sh.candidate = candidate
	return sh, nil
}

// Load loads the candidate set with the given entrypoints (those of the
// active engine). A candidate that does not load is reported and leaves
// shadow mode idle until a good one appears; it is not fatal, because the
// candidate enforces nothing.
func (sh *Shadow) Load(ctx context.Context, entrypoints ...string) error {
	return sh.candidate.Load(ctx, entrypoints...)
}

// Candidate is the candidate set's engine, for its revision and status.
func (sh *Shadow) Candidate() *Engine { return sh.candidate }

// Compare queues the comparison of the active set's decision on in with
// the candidate's. It never blocks and never evaluates on the caller's
// goroutine: when the request is not sampled it does nothing; when the
// queue is full or no candidate is loaded the comparison is dropped and
// counted. in must not be changed afterwards (inputs built by the engine
// are not).
func (sh *Shadow) Compare(in *Input, entrypoint string, active Decision) {
	if sh.cfg.Sample < 1 && rand.Float64() >= sh.cfg.Sample {
		return
	}
	if sh.candidate.Active() == nil {
		sh.decisions.WithLabelValues(ShadowDropped).Inc()
		return
	}
	sh.pending.Add(1)
	select {
	case sh.queue <- shadowJob{in: in, entrypoint: entrypoint, active: active}:
	default:
		sh.pending.Done()
		sh.decisions.WithLabelValues(ShadowDropped).Inc()
	}
}

// Run evaluates queued comparisons and watches the candidate folder until
// ctx ends, then returns nil. Comparisons still queued then are dropped
// (counted).
func (sh *Shadow) Run(ctx context.Context) error {
	watchErr := make(chan error, 1)
	go func() { watchErr <- sh.candidate.Watch(ctx) }()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case <-sh.queue:
					sh.decisions.WithLabelValues(ShadowDropped).Inc()
					sh.pending.Done()
				default:
					if err := <-watchErr; err != nil {
						return fmt.Errorf("candidate: %w", err)
					}
					return nil
				}
			}
		case j := <-sh.queue:
			sh.compare(ctx, j)
			sh.pending.Done()
		}
	}
}

// wait blocks until every queued comparison is done: for tests.
func (sh *Shadow) wait() { sh.pending.Wait() }

// compare decides j's input with the candidate and reports the outcome.
func (sh *Shadow) compare(ctx context.Context, j shadowJob) {
	cand := sh.candidate.Decide(ctx, j.in, j.entrypoint)
	diff := Differences(j.active, cand)
	if len(diff) == 0 {
		sh.decisions.WithLabelValues(ShadowAgree).Inc()
		return
	}
	kind := disagreement(j.active, cand)
	sh.decisions.WithLabelValues(ShadowDisagree).Inc()
	sh.disagreements.WithLabelValues(kind).Inc()
	sh.log.LogAttrs(ctx, slog.LevelInfo, "policy shadow disagreement",
		slog.String("kind", kind),
		slog.Any("fields", diff),
		slog.String("request_id", j.in.Request.ID),
		slog.String("method", j.in.Request.Method),
		slog.String("path", j.in.Request.Path),
		slog.String("route", j.in.Route.ID),
		slog.String("subject_kind", j.in.Subject.Kind),
		slog.String("subject", j.in.Subject.ID),
		slog.Any("active", j.active),
		slog.Any("candidate", cand),
	)
}

// Kinds of disagreement, the kind label of
// crmgate_policy_shadow_disagreements_total.
const (
	// DisagreeDenyToAllow: the candidate would allow a request the
	// active set denies. The one to read first: promoting the candidate
	// would open access.
	DisagreeDenyToAllow = "deny_to_allow"
	// DisagreeAllowToDeny: the candidate would deny an allowed request.
	DisagreeAllowToDeny = "allow_to_deny"
	// DisagreeObligations: both allow (or both deny) but with different
	// redactions, filters, tier, headers, audit, step-up or session
	// action.
	DisagreeObligations = "obligations"
	// DisagreeFailed: the candidate gave no valid decision (undefined,
	// error, timeout, schema) where the active set did.
	DisagreeFailed = "failed"
)

func disagreement(active, cand Decision) string {
	switch {
	case cand.Failed() && !active.Failed():
		return DisagreeFailed
	case cand.Allow && !active.Allow:
		return DisagreeDenyToAllow
	case !cand.Allow && active.Allow:
		return DisagreeAllowToDeny
	default:
		return DisagreeObligations
	}
}

// Differences lists the fields in which two decisions differ in what the
// gateway enforces: allow, step_up, redact, filter, rate_limit,
// upstream_headers, session_action, audit, and whether the decision
// failed. The reason, revision, entrypoint and timing are not compared:
// a reworded reason is not a change of behaviour. Empty and absent lists
// and maps are equal, as are an empty session action and "none".
func Differences(a, b Decision) []string {
	var diff []string
	if a.Allow != b.Allow {
		diff = append(diff, "allow")
	}
	if !reflect.DeepEqual(a.StepUp, b.StepUp) {
		diff = append(diff, "step_up")
	}
	if !slices.EqualFunc(a.Redact, b.Redact, func(x, y Redaction) bool { return x == y }) {
		diff = append(diff, "redact")
	}
	if !slices.EqualFunc(a.Filter, b.Filter, func(x, y Filter) bool { return reflect.DeepEqual(x, y) }) {
		diff = append(diff, "filter")
	}
	if !reflect.DeepEqual(a.RateLimit, b.RateLimit) {
		diff = append(diff, "rate_limit")
	}
	if !maps.Equal(a.UpstreamHeaders, b.UpstreamHeaders) {
		diff = append(diff, "upstream_headers")
	}
	if sessionAction(a.SessionAction) != sessionAction(b.SessionAction) {
		diff = append(diff, "session_action")
	}
	if !sameAudit(a.Audit, b.Audit) {
		diff = append(diff, "audit")
	}
	if a.Failed() != b.Failed() {
		diff = append(diff, "failed")
	}
	return diff
}

func sessionAction(s string) string {
	if s == "" {
		return SessionNone
	}
	return s
}

func sameAudit(a, b *Audit) bool {
	norm := func(x *Audit) Audit {
		if x == nil {
			return Audit{Durability: DurabilityAsync}
		}
		y := *x
		if y.Durability == "" {
			y.Durability = DurabilityAsync
		}
		return y
	}
	x, y := norm(a), norm(b)
	return x.Durability == y.Durability && slices.Equal(x.Tags, y.Tags)
}

// samePath reports whether two folder names refer to the same folder as
// far as the names tell (cleaned and made absolute).
func samePath(a, b string) bool {
	return cleanAbs(a) == cleanAbs(b)
}

func cleanAbs(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}
