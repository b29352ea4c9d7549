package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/scope"
)

// The active set of the shadow tests: members read, admins also write.
const shadowActive = `package s

default decision := {"allow": false, "reason": "no"}

decision := {"allow": true, "reason": "member reads"} if {
	input.request.method == "GET"
	"member" in input.subject.roles
}

decision := {"allow": true, "reason": "admin"} if {
	input.request.method != "GET"
	"admin" in input.subject.roles
}
`

// shadowLog is a log sink written by the shadow's goroutine and read by
// the test.
type shadowLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *shadowLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the disagreements logged.
func (s *shadowLog) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "policy shadow disagreement" {
			out = append(out, m)
		}
	}
	return out
}

type shadowRig struct {
	active *Engine
	sh     *Shadow
	reg    *prometheus.Registry
	logs   *shadowLog
	cdir   string
	cancel context.CancelFunc
	done   chan error
}

// startShadow runs an active set (shadowActive) and a candidate with the
// given files; run false leaves the comparisons queued.
func startShadow(t *testing.T, candidate map[string]string, cfg ShadowConfig, run bool) *shadowRig {
	t.Helper()
	adir, cdir := t.TempDir(), t.TempDir()
	writeFiles(t, adir, map[string]string{"s.rego": shadowActive})
	writeFiles(t, cdir, candidate)
	rig := &shadowRig{reg: prometheus.NewRegistry(), logs: &shadowLog{}, cdir: cdir}
	main := testConfig(adir, "data.s.decision")
	rig.active = newEngine(t, main, Options{})
	cfg.Dir = cdir
	cfg.Defaults()
	if err := cfg.Validate(adir); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	sh, err := NewShadow(main, cfg, Options{
		Registerer: rig.reg,
		Logger:     slog.New(slog.NewJSONHandler(rig.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rig.sh = sh
	_ = sh.Load(context.Background())
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		rig.cancel, rig.done = cancel, make(chan error, 1)
		go func() { rig.done <- sh.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-rig.done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	return rig
}

// decide decides a request of a subject with roles by the active set and
// hands it to the shadow, as the gateway does; it returns the enforced
// decision.
func (rig *shadowRig) decide(method string, roles ...string) Decision {
	s := reqScope(method, "https://crm.example/api/contacts/1", "contacts.item", map[string]string{"id": "1"})
	s.Subject = &scope.Subject{Kind: scope.KindUser, ID: "u1", Roles: roles}
	in := rig.active.Input(s, httptest.NewRequest(method, "https://crm.example/api/contacts/1", nil))
	d := rig.active.Decide(context.Background(), in, "")
	rig.sh.Compare(in, "", d)
	return d
}

// count reads crmgate_policy_shadow_<name>_total{<label>} from the
// registry the shadow registered with.
func (rig *shadowRig) count(t *testing.T, name, label string) float64 {
	t.Helper()
	metric := "crmgate_policy_shadow_" + name + "_total"
	mfs, err := rig.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("%s{%s} not found", metric, label)
	return 0
}

func TestShadowAgreesWithItself(t *testing.T) {
	rig := startShadow(t, map[string]string{"s.rego": shadowActive}, ShadowConfig{}, true)
	for _, c := range []struct {
		method string
		roles  []string
	}{{"GET", []string{"member"}}, {"PUT", []string{"member"}}, {"PUT", []string{"admin"}}, {"GET", nil}} {
		rig.decide(c.method, c.roles...)
	}
	rig.sh.wait()
	if got := rig.count(t, "decisions", ShadowAgree); got != 4 {
		t.Errorf("agree = %v, want 4", got)
	}
	if got := rig.count(t, "decisions", ShadowDisagree); got != 0 {
		t.Errorf("disagree = %v, want 0", got)
	}
	if l := rig.logs.lines(t); len(l) != 0 {
		t.Errorf("logged %v, want nothing for agreement", l)
	}
}

func TestShadowReportsDisagreementsWithoutEnforcing(t *testing.T) {
	// The candidate lets members write (deny_to_allow), refuses admins'
	// writes (allow_to_deny), and tags members' reads for strict audit
	// (obligations).
	candidate := `package s

default decision := {"allow": false, "reason": "no"}

decision := {"allow": true, "reason": "member reads", "audit": {"durability": "strict"}} if {
	input.request.method == "GET"
	"member" in input.subject.roles
}

decision := {"allow": true, "reason": "members write now"} if {
	input.request.method != "GET"
	"member" in input.subject.roles
}
`
	rig := startShadow(t, map[string]string{"s.rego": candidate}, ShadowConfig{}, true)
	if d := rig.decide("PUT", "member"); d.Allow {
		t.Fatal("the candidate's allow was enforced")
	}
	if d := rig.decide("PUT", "admin"); !d.Allow {
		t.Fatal("the candidate's deny was enforced")
	}
	rig.decide("GET", "member")
	rig.decide("GET") // both deny, same obligations: agreement
	rig.sh.wait()

	for kind, want := range map[string]float64{DisagreeDenyToAllow: 1, DisagreeAllowToDeny: 1, DisagreeObligations: 1, DisagreeFailed: 0} {
		if got := rig.count(t, "disagreements", kind); got != want {
			t.Errorf("disagreements{kind=%s} = %v, want %v", kind, got, want)
		}
	}
	if got := rig.count(t, "decisions", ShadowAgree); got != 1 {
		t.Errorf("agree = %v, want 1", got)
	}
	lines := rig.logs.lines(t)
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3: %v", len(lines), lines)
	}
	first := lines[0]
	if first["msg"] != "policy shadow disagreement" || first["kind"] != DisagreeDenyToAllow || first["request_id"] != "req-1" || first["subject"] != "u1" {
		t.Errorf("log line = %v", first)
	}
	active, _ := first["active"].(map[string]any)
	cand, _ := first["candidate"].(map[string]any)
	if active["allow"] != false || cand["allow"] != true || cand["reason"] != "members write now" {
		t.Errorf("both decisions not logged: active %v, candidate %v", active, cand)
	}
	if f, _ := lines[2]["fields"].([]any); len(f) != 1 || f[0] != "audit" {
		t.Errorf("obligation line fields = %v, want [audit]", lines[2]["fields"])
	}
}

func TestShadowCandidateFailures(t *testing.T) {
	// A candidate without the entrypoint for some inputs: undefined is a
	// failed decision, reported as such.
	candidate := `package s

decision := {"allow": true, "reason": "only reads"} if input.request.method == "GET"
`
	rig := startShadow(t, map[string]string{"s.rego": candidate}, ShadowConfig{}, true)
	rig.decide("PUT", "admin")
	rig.sh.wait()
	if got := rig.count(t, "disagreements", DisagreeFailed); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
}

func TestShadowBrokenCandidateIsIdleUntilFixed(t *testing.T) {
	rig := startShadow(t, map[string]string{"s.rego": "package s\n\ndecision := {\n"}, ShadowConfig{}, true)
	if rig.sh.Candidate().Revision() != "" {
		t.Fatal("a candidate that does not compile was loaded")
	}
	if got := rig.count(t, "reload", ReloadCompileError); got != 1 {
		t.Errorf("reload{compile_error} = %v, want 1", got)
	}
	if d := rig.decide("PUT", "admin"); !d.Allow {
		t.Fatal("the active decision changed")
	}
	if got := rig.count(t, "decisions", ShadowDropped); got != 1 {
		t.Errorf("dropped = %v, want 1 (no candidate)", got)
	}
	// Fixing the candidate folder starts the comparisons within 2 s (once
	// the watcher, started by Run, is registered).
	time.Sleep(300 * time.Millisecond)
	writeFiles(t, rig.cdir, map[string]string{"s.rego": shadowActive})
	deadline := time.Now().Add(2 * time.Second)
	for rig.sh.Candidate().Revision() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the fixed candidate was not loaded within 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rig.decide("PUT", "admin")
	rig.sh.wait()
	if got := rig.count(t, "decisions", ShadowAgree); got != 1 {
		t.Errorf("agree = %v, want 1", got)
	}
}

func TestShadowNeverBlocksTheRequest(t *testing.T) {
	// Run is not started: the queue of 2 fills, later comparisons are
	// dropped at once.
	rig := startShadow(t, map[string]string{"s.rego": shadowActive}, ShadowConfig{Queue: 2}, false)
	start := time.Now()
	for range 10 {
		rig.decide("GET", "member")
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("10 comparisons took %s", el)
	}
	if got := rig.count(t, "decisions", ShadowDropped); got != 8 {
		t.Errorf("dropped = %v, want 8", got)
	}
	// Run drains the queue, and counts what is left when it stops.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rig.sh.Run(ctx) }()
	rig.sh.wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := rig.count(t, "decisions", ShadowAgree); got != 2 {
		t.Errorf("agree = %v, want 2", got)
	}
}

func TestShadowSample(t *testing.T) {
	rig := startShadow(t, map[string]string{"s.rego": shadowActive}, ShadowConfig{Sample: 0.25}, true)
	for range 400 {
		rig.decide("GET", "member")
	}
	rig.sh.wait()
	got := rig.count(t, "decisions", ShadowAgree)
	if got < 40 || got > 180 {
		t.Errorf("compared %v of 400 at sample 0.25", got)
	}
}

func TestDifferences(t *testing.T) {
	base := Decision{Allow: true, Reason: "a", Redact: []Redaction{{Path: "$..ssn", Action: ActionRemove}},
		Filter:    []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "u1"}}},
		RateLimit: &RateLimit{Tier: "standard"}, Audit: &Audit{Durability: DurabilityAsync, Tags: []string{"pii"}}}
	clone := func(f func(*Decision)) Decision {
		b, _ := json.Marshal(base)
		var d Decision
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		f(&d)
		return d
	}
	cases := []struct {
		name string
		d    Decision
		want string
	}{
		{"reworded reason", clone(func(d *Decision) { d.Reason = "b"; d.Revision = "x"; d.Elapsed = time.Second }), ""},
		{"allow", clone(func(d *Decision) { d.Allow = false }), "allow"},
		{"step up", clone(func(d *Decision) { d.StepUp = &StepUp{ACR: "mfa"} }), "step_up"},
		{"redaction action", clone(func(d *Decision) { d.Redact[0].Action = ActionMask }), "redact"},
		{"redaction dropped", clone(func(d *Decision) { d.Redact = nil }), "redact"},
		{"filter value", clone(func(d *Decision) { d.Filter[0].KeepWhere["owner"] = "u2" }), "filter"},
		{"tier", clone(func(d *Decision) { d.RateLimit = nil }), "rate_limit"},
		{"header", clone(func(d *Decision) { d.UpstreamHeaders = map[string]string{"X-A": "1"} }), "upstream_headers"},
		{"none is empty", clone(func(d *Decision) { d.SessionAction = SessionNone }), ""},
		{"revoke", clone(func(d *Decision) { d.SessionAction = SessionRevoke }), "session_action"},
		{"async is default", clone(func(d *Decision) { d.Audit.Durability = "" }), ""},
		{"strict", clone(func(d *Decision) { d.Audit.Durability = DurabilityStrict }), "audit"},
		{"tags", clone(func(d *Decision) { d.Audit.Tags = nil }), "audit"},
		{"failed", clone(func(d *Decision) { d.Error = "boom" }), "failed"},
		{"several", clone(func(d *Decision) { d.Allow = false; d.Redact = nil }), "allow,redact"},
	}
	for _, c := range cases {
		if got := strings.Join(Differences(base, c.d), ","); got != c.want {
			t.Errorf("%s: Differences = %q, want %q", c.name, got, c.want)
		}
	}
	if got := Differences(Decision{}, Decision{SessionAction: SessionNone, Audit: &Audit{}}); len(got) != 0 {
		t.Errorf("zero decisions differ in %v", got)
	}
}

func TestShadowConfigValidate(t *testing.T) {
	cases := []struct {
		cfg  ShadowConfig
		want string
	}{
		{ShadowConfig{}, "dir: required"},
		{ShadowConfig{Dir: "policies/"}, "the active set's folder"},
		{ShadowConfig{Dir: "c", Sample: 1.5}, "sample: must be above 0"},
		{ShadowConfig{Dir: "c", Sample: -1}, "sample: must be above 0"},
		{ShadowConfig{Dir: "c", Queue: -1}, "queue: must be between"},
	}
	for _, c := range cases {
		c.cfg.Defaults()
		err := c.cfg.Validate("policies")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Validate = %v, want %q", c.cfg, err, c.want)
		}
	}
	ok := ShadowConfig{Dir: "candidate"}
	ok.Defaults()
	if err := ok.Validate("policies"); err != nil {
		t.Errorf("Validate = %v", err)
	}
}
