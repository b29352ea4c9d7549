package policy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/scope"
)

func basicEngine(t *testing.T) *Engine {
	t.Helper()
	return newEngine(t, testConfig("testdata/basic", "data.fixture.decision"), Options{}, "data.fixture.other")
}

func decideRoute(t *testing.T, e *Engine, routeID string, params map[string]string) Decision {
	t.Helper()
	s := reqScope("GET", "/api/x", routeID, params)
	s.Subject = &scope.Subject{Kind: scope.KindUser, ID: "alice", Roles: []string{"sales"}}
	in := e.Input(s, httptest.NewRequest("GET", "/api/x", nil))
	return e.Decide(context.Background(), in, "")
}

// Every way a policy can fail to decide is a deny with a machine-readable
// reason: the engine never fails open.
func TestDecideFailuresDeny(t *testing.T) {
	e := basicEngine(t)
	tests := []struct {
		route  string
		params map[string]string
		reason string
		detail string // in Decision.Error
	}{
		{route: "nothing_matches", reason: ReasonUndefined, detail: "undefined"},
		{route: "allow_string", reason: ReasonDecisionInvalid, detail: "allow: got string, want boolean"},
		{route: "allow_missing", reason: ReasonDecisionInvalid, detail: "allow is missing"},
		{route: "not_object", reason: ReasonDecisionInvalid, detail: "got boolean, want an object"},
		{route: "bad_session_action", reason: ReasonDecisionInvalid, detail: `"logout" is not allowed`},
		{route: "bad_redact_path", reason: ReasonDecisionInvalid, detail: "redact[0].path"},
		{route: "bad_redact_action", reason: ReasonDecisionInvalid, detail: `"blur" is not allowed`},
		{route: "bad_keep_last", reason: ReasonDecisionInvalid, detail: "only applies to action mask"},
		{route: "unknown_field", reason: ReasonDecisionInvalid, detail: "redacts: unknown field"},
		{route: "step_up_on_allow", reason: ReasonDecisionInvalid, detail: "set on an allow"},
		{route: "bad_header", reason: ReasonDecisionInvalid, detail: "not a valid header value"},
		{route: "builtin_error", params: map[string]string{"n": "abc"}, reason: ReasonError, detail: "to_number"},
		{route: "conflict", reason: ReasonError, detail: "conflict"},
		{route: "slow", reason: ReasonTimeout, detail: "exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			start := time.Now()
			d := decideRoute(t, e, tt.route, tt.params)
			if d.Allow || d.Reason != tt.reason || !d.Failed() {
				t.Errorf("Decide(%s) = allow %v reason %q failed %v, want a failed deny with %q", tt.route, d.Allow, d.Reason, d.Failed(), tt.reason)
			}
			if !strings.Contains(d.Error, tt.detail) {
				t.Errorf("Decide(%s).Error = %q, want it to mention %q", tt.route, d.Error, tt.detail)
			}
			if d.Revision == "" || d.Revision != e.Revision() {
				t.Errorf("Decide(%s).Revision = %q, want the active %q", tt.route, d.Revision, e.Revision())
			}
			if el := time.Since(start); el > 5*e.cfg.EvalTimeout {
				t.Errorf("Decide(%s) took %s; the deadline is %s", tt.route, el, e.cfg.EvalTimeout)
			}
		})
	}
}

func TestDecideValid(t *testing.T) {
	e := basicEngine(t)
	tests := []struct {
		route string
		want  Decision
	}{
		{"ok", Decision{Allow: true, Reason: "ok", RateLimit: &RateLimit{Tier: "gold"}, SessionAction: SessionNone}},
		{"deny", Decision{Reason: "denied by policy", SessionAction: SessionNone}},
		{"step_up", Decision{Reason: "fresh mfa", StepUp: &StepUp{ACR: "mfa", MaxAgeS: 300}, SessionAction: SessionNone}},
		{"full", Decision{
			Allow:  true,
			Reason: "everything",
			Redact: []Redaction{
				{Path: "$.items[*].ssn", Action: ActionRemove},
				{Path: "$..credit_card", Action: ActionMask, KeepLast: 4},
			},
			Filter:          []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}},
			RateLimit:       &RateLimit{Tier: "standard"},
			UpstreamHeaders: map[string]string{"X-Crm-Team": "sales"},
			SessionAction:   SessionNone,
			Audit:           &Audit{Durability: DurabilityStrict, Tags: []string{"pii-read"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			d := decideRoute(t, e, tt.route, nil)
			tt.want.Revision = e.Revision()
			tt.want.Entrypoint = "data.fixture.decision"
			d.Elapsed = 0
			if d.Memo == nil {
				t.Errorf("Decide(%s): a valid decision has no memo", tt.route)
			}
			d.Memo = nil
			if diff := cmp.Diff(d, tt.want); diff != "" {
				t.Errorf("Decide(%s) (-got +want):\n%s", tt.route, diff)
			}
		})
	}
}

func TestDecideEntrypoints(t *testing.T) {
	e := basicEngine(t)
	in := e.Input(reqScope("GET", "/", "any", nil), httptest.NewRequest("GET", "/", nil))
	if d := e.Decide(context.Background(), in, "data.fixture.other"); !d.Allow || d.Reason != "other entrypoint" {
		t.Errorf("Decide(other) = %+v, want the other entrypoint's allow", d)
	}
	// The spelling does not matter, the rule does.
	if d := e.Decide(context.Background(), in, `data["fixture"].other`); d.Reason != ReasonUnknownEntrypoint {
		t.Errorf("Decide(unprepared spelling) = %+v, want %s", d, ReasonUnknownEntrypoint)
	}
	if d := e.Decide(context.Background(), in, "data.fixture.never_prepared"); d.Allow || d.Reason != ReasonUnknownEntrypoint {
		t.Errorf("Decide(unknown entrypoint) = %+v, want a deny with %s", d, ReasonUnknownEntrypoint)
	}
}

func TestDecideNotLoaded(t *testing.T) {
	e, err := New(testConfig("testdata/basic", "data.fixture.decision"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Decide(context.Background(), &Input{}, "")
	if d.Allow || d.Reason != ReasonNotLoaded {
		t.Errorf("Decide before Load = %+v, want a deny with %s", d, ReasonNotLoaded)
	}
}

func TestDecideCanceled(t *testing.T) {
	e := basicEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := reqScope("GET", "/", "slow", nil)
	d := e.Decide(ctx, e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
	if d.Allow || (d.Reason != ReasonCanceled && d.Reason != ReasonTimeout) {
		t.Errorf("Decide(canceled ctx) = %+v, want a deny with %s", d, ReasonCanceled)
	}
}

// A header value that is not UTF-8 cannot be represented in Rego without
// changing it; a policy deciding on a changed value could be bypassed.
func TestDecideInputInvalid(t *testing.T) {
	e := basicEngine(t)
	tests := []struct {
		name   string
		target string
		header string
		detail string
	}{
		{name: "header", target: "/", header: "Mozilla \xff", detail: `request.headers["user-agent"] is not valid UTF-8`},
		{name: "query value", target: "/?q=%ff", detail: `request.query["q"] is not valid UTF-8`},
		{name: "query escape", target: "/?q=%zz", detail: "query"},
		{name: "query semicolon", target: "/?a=1;b=2", detail: "query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			if tt.header != "" {
				r.Header.Set("User-Agent", tt.header)
			}
			in := e.Input(reqScope("GET", "/", "ok", nil), r)
			if !errors.Is(in.Err(), ErrInputInvalid) {
				t.Errorf("Input().Err() = %v, want ErrInputInvalid", in.Err())
			}
			d := e.Decide(context.Background(), in, "")
			if d.Allow || d.Reason != ReasonInputInvalid || !strings.Contains(d.Error, tt.detail) {
				t.Errorf("Decide = allow %v reason %q error %q, want a deny with %s mentioning %q", d.Allow, d.Reason, d.Error, ReasonInputInvalid, tt.detail)
			}
		})
	}
	t.Run("subject", func(t *testing.T) {
		s := reqScope("GET", "/", "ok", nil)
		s.Subject = &scope.Subject{Kind: scope.KindUser, ID: "al\xc0ice"}
		d := e.Decide(context.Background(), e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
		if d.Reason != ReasonInputInvalid || !strings.Contains(d.Error, "subject.id") {
			t.Errorf("Decide(non-UTF-8 subject) = %+v, want %s", d, ReasonInputInvalid)
		}
	})
	t.Run("nil", func(t *testing.T) {
		for name, in := range map[string]*Input{"nil input": nil, "nil scope": e.Input(nil, nil)} {
			if d := e.Decide(context.Background(), in, ""); d.Allow || d.Reason != ReasonInputInvalid {
				t.Errorf("Decide(%s) = %+v, want a deny with %s", name, d, ReasonInputInvalid)
			}
		}
	})
}

// The policy sees exactly the input the contract documents.
func TestDecideSeesInput(t *testing.T) {
	e := basicEngine(t)
	s := reqScope("DELETE", "/api/contacts/42?q=x&q=y", "echo", map[string]string{"id": "42"})
	s.Subject = &scope.Subject{
		Kind: scope.KindUser, ID: "alice", Email: "alice@example.com", Roles: []string{"sales"},
		ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: testTime.Add(-2 * time.Minute),
		Claims: map[string]any{"preferred_username": "alice", "n": 1.5},
	}
	s.Session = &scope.Session{Created: testTime.Add(-120 * time.Second), LastSeen: testTime.Add(-3 * time.Second),
		Fingerprint: scope.FingerprintCheck{Bound: true, Match: false, Changed: []string{"ja4", "ip_prefix"},
			BoundUserAgent: "chrome/130", UserAgent: "chrome/131"}}
	r := httptest.NewRequest("DELETE", "https://CRM.example.com/api/contacts/42?q=x&q=y", nil)
	r.Header.Set("User-Agent", "test/1")
	r.Header.Add("Accept", "text/html")
	r.Header.Add("Accept", "application/json")
	r.Header.Set("Cookie", "__Host-crmgate=secret")
	r.Header.Set("Authorization", "Bearer secret")
	d := e.Decide(context.Background(), e.Input(s, r), "")
	if !d.Allow {
		t.Fatalf("Decide(echo) = %+v", d)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(d.Reason), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"request": map[string]any{
			"id": "req-1", "method": "DELETE", "path": "/api/contacts/42",
			"query": map[string]any{"q": []any{"x", "y"}}, "host": "crm.example.com",
			"client_ip": "203.0.113.7", "time": "2026-01-02T15:04:05Z",
			"headers": map[string]any{"user-agent": "test/1", "accept": "text/html, application/json"},
		},
		"route": map[string]any{"id": "echo", "params": map[string]any{"id": "42"}, "tags": []any{"pii"}},
		"subject": map[string]any{
			"kind": "user", "id": "alice", "email": "alice@example.com", "roles": []any{"sales"},
			"groups": []any{}, "acr": "mfa", "amr": []any{"pwd", "otp"}, "auth_time": float64(testTime.Unix() - 120),
			"api_key": nil, "claims": map[string]any{"preferred_username": "alice", "n": 1.5},
		},
		"session": map[string]any{"age_s": float64(120), "idle_s": float64(3),
			"fingerprint": map[string]any{"bound": true, "match": false, "changed": []any{"ja4", "ip_prefix"},
				"user_agent": map[string]any{"bound": "chrome/130", "current": "chrome/131"}}},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("input seen by the policy (-got +want):\n%s", diff)
	}

	// The Input's own JSON is the same document.
	var fromJSON map[string]any
	b, err := json.Marshal(e.Input(s, r))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatal(err)
	}
	want["subject"].(map[string]any)["groups"] = nil // a nil slice marshals as null
	if diff := cmp.Diff(fromJSON, want); diff != "" {
		t.Errorf("json.Marshal(Input) (-got +want):\n%s", diff)
	}
}

func TestDecideTimeIsRequestTime(t *testing.T) {
	e := basicEngine(t)
	d := decideRoute(t, e, "now", nil)
	if want := "1767366245000000000"; d.Reason != want {
		t.Errorf("time.now_ns() = %s, want the request's time %s", d.Reason, want)
	}
}

func TestAnonymousWithoutSubject(t *testing.T) {
	e := basicEngine(t)
	s := reqScope("GET", "/", "echo", nil)
	d := e.Decide(context.Background(), e.Input(s, httptest.NewRequest("GET", "/", nil)), "")
	var got struct {
		Subject map[string]any `json:"subject"`
		Session any            `json:"session"`
	}
	if err := json.Unmarshal([]byte(d.Reason), &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject["kind"] != "anonymous" || got.Session != nil {
		t.Errorf("input without subject or session = %+v, want kind anonymous and session null", got)
	}
}

// A set that does not compile, decides nothing, has failing tests or calls
// out to the network is refused at load: the engine never runs it.
func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		dir    string
		ep     string
		result string
		detail string
	}{
		{"testdata/broken", "data.broken.decision", ReloadCompileError, "testdata/broken/broken.rego:5"},
		{"testdata/nodecision", "data.fixture.decision", ReloadCompileError, "no rule defines it"},
		{"testdata/network", "data.fixture.decision", ReloadCompileError, "http.send"},
		{"testdata/emptyset", "data.fixture.decision", ReloadCompileError, "no .rego policy file"},
		{"testdata/failingtest", "data.fixture.decision", ReloadTestFailure, "testdata/failingtest/policy_test.rego:8: data.fixture_test.test_closed_is_open: FAIL"},
		{"testdata/missing", "data.fixture.decision", ReloadReadError, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			var got ReloadEvent
			e, err := New(testConfig(tt.dir, tt.ep), Options{OnReload: func(ev ReloadEvent) { got = ev }})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Load(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("Load(%s) = %v, want an error mentioning %q", tt.dir, err, tt.detail)
			}
			if got.Result != tt.result {
				t.Errorf("Load(%s) result = %q, want %q", tt.dir, got.Result, tt.result)
			}
			if e.Active() != nil {
				t.Errorf("Load(%s) left an active set", tt.dir)
			}
			if d := e.Decide(context.Background(), &Input{}, ""); d.Allow {
				t.Errorf("Decide after a refused load allowed")
			}
		})
	}
}
