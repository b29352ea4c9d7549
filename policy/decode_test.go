package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

func mustValue(t testing.TB, s string) ast.Value {
	t.Helper()
	v, err := ast.ParseTerm(s)
	if err != nil {
		t.Fatalf("ParseTerm(%s): %v", s, err)
	}
	return v.Value
}

func TestDecodeDecision(t *testing.T) {
	tests := []struct {
		in   string
		want Decision
		err  string
	}{
		{in: `{"allow": true}`, want: Decision{Allow: true, SessionAction: SessionNone}},
		{in: `{"allow": false, "reason": "no", "session_action": "revoke"}`, want: Decision{Reason: "no", SessionAction: SessionRevoke}},
		{in: `{"allow": false, "step_up": {"max_age_s": 60}}`, want: Decision{StepUp: &StepUp{MaxAgeS: 60}, SessionAction: SessionNone}},
		// A set is taken in OPA's order of values: the same set always
		// yields the same list.
		{in: `{"allow": true, "redact": {{"path": "$.b", "action": "hash"}, {"path": "$.a", "action": "remove"}}}`,
			want: Decision{Allow: true, SessionAction: SessionNone, Redact: []Redaction{{Path: "$.b", Action: ActionHash}, {Path: "$.a", Action: ActionRemove}}}},
		{in: `{"allow": true, "redact": [], "filter": []}`, want: Decision{Allow: true, SessionAction: SessionNone}},
		{in: `{"allow": true, "filter": [{"path": "$.items", "keep_where": {"owner": "a", "n": 2, "active": true}}]}`,
			want: Decision{Allow: true, SessionAction: SessionNone, Filter: []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "a", "n": json.Number("2"), "active": true}}}}},
		{in: `{"allow": true, "audit": {"tags": ["a", "b"]}}`, want: Decision{Allow: true, SessionAction: SessionNone, Audit: &Audit{Tags: []string{"a", "b"}}}},
		{in: `{"allow": true, "upstream_headers": {"x-crm-user": "alice"}}`, want: Decision{Allow: true, SessionAction: SessionNone, UpstreamHeaders: map[string]string{"X-Crm-User": "alice"}}},

		{in: `true`, err: "decision: got boolean, want an object"},
		{in: `[{"allow": true}]`, err: "decision: got array"},
		{in: `{}`, err: "allow is missing"},
		{in: `{"allow": 1}`, err: "allow: got number, want boolean"},
		{in: `{"allow": "true"}`, err: "allow: got string, want boolean"},
		{in: `{"allow": null}`, err: "allow: got null, want boolean"},
		{in: `{"allow": true, "Allow": true}`, err: "Allow: unknown field"},
		{in: `{"allow": true, 1: true}`, err: "decision.1: unknown field"},
		{in: `{"allow": true, "reason": 7}`, err: "reason: got number, want string"},
		{in: `{"allow": false, "step_up": {}}`, err: "needs acr, max_age_s or both"},
		{in: `{"allow": false, "step_up": {"acr": "mfa", "max_age_s": -1}}`, err: "out of range"},
		{in: `{"allow": false, "step_up": {"acr": "mfa", "max_age_s": 1.5}}`, err: "not an integer"},
		{in: `{"allow": false, "step_up": {"acr": "mfa", "level": 2}}`, err: "step_up.level: unknown field"},
		{in: `{"allow": true, "step_up": {"acr": "mfa"}}`, err: "set on an allow"},
		{in: `{"allow": true, "redact": {"path": "$.a"}}`, err: "redact: got object, want array"},
		{in: `{"allow": true, "redact": ["$.a"]}`, err: "redact[0]: got string, want object"},
		{in: `{"allow": true, "redact": [{"action": "remove"}]}`, err: "redact[0].path: missing"},
		{in: `{"allow": true, "redact": [{"path": "", "action": "remove"}]}`, err: "redact[0].path: empty"},
		{in: `{"allow": true, "redact": [{"path": "a.b", "action": "remove"}]}`, err: "not a JSONPath"},
		{in: `{"allow": true, "redact": [{"path": "$.a"}]}`, err: "redact[0].action: missing"},
		{in: `{"allow": true, "redact": [{"path": "$.a", "action": "drop"}]}`, err: `"drop" is not allowed`},
		{in: `{"allow": true, "redact": [{"path": "$.a", "action": "mask", "keep_last": 100}]}`, err: "out of range"},
		{in: `{"allow": true, "redact": [{"path": "$.a", "action": "hash", "keep_last": 4}]}`, err: "only applies to action mask"},
		{in: `{"allow": true, "filter": [{"path": "$.items"}]}`, err: "keep_where: got nothing"},
		{in: `{"allow": true, "filter": [{"path": "$.items", "keep_where": {}}]}`, err: "needs 1 to"},
		{in: `{"allow": true, "filter": [{"path": "$.items", "keep_where": {"owner": ["a"]}}]}`, err: "keep_where.owner: got array"},
		{in: `{"allow": true, "filter": [{"path": "$.items", "keep_where": {"owner": null}}]}`, err: "keep_where.owner: got null"},
		{in: `{"allow": true, "rate_limit": {}}`, err: "rate_limit.tier: missing"},
		{in: `{"allow": true, "rate_limit": {"tier": ""}}`, err: "rate_limit.tier: empty"},
		{in: `{"allow": true, "rate_limit": "gold"}`, err: "rate_limit: got string"},
		{in: `{"allow": true, "upstream_headers": {"bad header": "x"}}`, err: "is not a header name"},
		{in: `{"allow": true, "upstream_headers": {"X-A": "a\r\nX-B: b"}}`, err: "not a valid header value"},
		{in: `{"allow": true, "upstream_headers": {"x-a": "1", "X-A": "2"}}`, err: "names the same header"},
		{in: `{"allow": true, "upstream_headers": {"X-A": 1}}`, err: "got number, want string"},
		{in: `{"allow": true, "session_action": "logout"}`, err: `"logout" is not allowed`},
		{in: `{"allow": true, "session_action": ""}`, err: "session_action: empty"},
		{in: `{"allow": true, "audit": {"durability": "eventual"}}`, err: `"eventual" is not allowed`},
		{in: `{"allow": true, "audit": {"tags": "pii"}}`, err: "audit.tags: got string"},
		{in: `{"allow": true, "audit": {"tags": [""]}}`, err: "audit.tags[0]: empty"},
		{in: `{"allow": true, "reason": "` + strings.Repeat("x", maxStringLen+1) + `"}`, err: "longer than"},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			got, err := decodeDecision(mustValue(t, tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodeDecision(%s) = %+v, %v, want error %q", tt.in, got, err, tt.err)
				}
				if got.Allow {
					t.Errorf("decodeDecision(%s) failed but allows", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeDecision(%s) = %v", tt.in, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("decodeDecision(%s) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeDecisionBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"allow": true, "redact": [`)
	for i := 0; i <= maxListItems; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"path": "$.a", "action": "remove"}`)
	}
	b.WriteString("]}")
	if _, err := decodeDecision(mustValue(t, b.String())); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("decodeDecision(%d redactions) = %v, want a bound error", maxListItems+1, err)
	}
}

// FuzzDecodeDecision checks that no answer of a policy makes the decoder
// panic, and that whatever it accepts survives a JSON round trip.
func FuzzDecodeDecision(f *testing.F) {
	for _, s := range []string{
		`{"allow": true}`,
		`{"allow": false, "reason": "x", "step_up": {"acr": "mfa", "max_age_s": 300}}`,
		`{"allow": true, "redact": [{"path": "$..ssn", "action": "remove"}, {"path": "$..cc", "action": "mask", "keep_last": 4}]}`,
		`{"allow": true, "filter": [{"path": "$.items", "keep_where": {"owner": "alice"}}], "rate_limit": {"tier": "standard"}}`,
		`{"allow": true, "upstream_headers": {"X-A": "b"}, "session_action": "none", "audit": {"durability": "strict", "tags": ["a"]}}`,
		`{"allow": "yes"}`,
		`[1, 2]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		term, err := ast.ParseTerm(s)
		if err != nil || !term.IsGround() {
			return
		}
		d, err := decodeDecision(term.Value)
		if err != nil {
			if d.Allow {
				t.Fatalf("decodeDecision(%s) failed but allows", s)
			}
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", d, err)
		}
		var back Decision
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("json.Unmarshal(%s): %v", b, err)
		}
		if back.Allow != d.Allow || back.SessionAction != d.SessionAction || len(back.Redact) != len(d.Redact) {
			t.Fatalf("round trip of %s changed it: %+v", b, back)
		}
	})
}
