package decisionlog

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/crmgate/crmgate/policy"
)

// opaEventV1 is OPA's decision log event, EventV1 of
// github.com/open-policy-agent/opa/v1/plugins/logs (v1.22.2), field for
// field. That package cannot be imported here without adding modules
// (it pulls in OPA's server); TestOPAEventV1Mirror checks this copy
// against its source. Error is an error interface there, which
// encoding/json cannot decode into, so it is raw here.
type opaEventV1 struct {
	Labels              map[string]string          `json:"labels"`
	DecisionID          string                     `json:"decision_id"`
	BatchDecisionID     string                     `json:"batch_decision_id,omitempty"`
	TraceID             string                     `json:"trace_id,omitempty"`
	SpanID              string                     `json:"span_id,omitempty"`
	Revision            string                     `json:"revision,omitempty"`
	Bundles             map[string]opaBundleInfoV1 `json:"bundles,omitempty"`
	Path                string                     `json:"path,omitempty"`
	Query               string                     `json:"query,omitempty"`
	Input               *any                       `json:"input,omitempty"`
	Result              *any                       `json:"result,omitempty"`
	IntermediateResults map[string]any             `json:"intermediate_results,omitempty"`
	MappedResult        *any                       `json:"mapped_result,omitempty"`
	NDBuiltinCache      *any                       `json:"nd_builtin_cache,omitempty"`
	Erased              []string                   `json:"erased,omitempty"`
	Masked              []string                   `json:"masked,omitempty"`
	Error               json.RawMessage            `json:"error,omitempty"`
	RequestedBy         string                     `json:"requested_by,omitempty"`
	Timestamp           time.Time                  `json:"timestamp"`
	Metrics             map[string]any             `json:"metrics,omitempty"`
	RequestID           uint64                     `json:"req_id,omitempty"`
	RuleLabels          []map[string]any           `json:"rule_labels,omitempty"`
	RequestContext      *opaRequestContext         `json:"request_context,omitempty"`
	Custom              map[string]any             `json:"custom,omitempty"`
}

type opaBundleInfoV1 struct {
	Revision string `json:"revision,omitempty"`
}

type opaRequestContext struct {
	HTTPRequest *struct {
		Headers map[string][]string `json:"headers,omitempty"`
	} `json:"http,omitempty"`
}

// decodeOPA decodes line into OPA's event, refusing any key OPA's event
// does not have.
func decodeOPA(t *testing.T, line []byte) opaEventV1 {
	t.Helper()
	var ev opaEventV1
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		t.Fatalf("line does not decode as OPA's EventV1: %v\n%s", err, line)
	}
	return ev
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestEventIsOPAEventV1(t *testing.T) {
	l := newTestLogger(t, Config{Labels: map[string]string{"region": "eu-west-1"}}, nil, Options{})
	l.newID = appendUUID
	line := encode(l, Entry{Input: testInput(), Decision: testDecision(), Time: testTime})
	ev := decodeOPA(t, line)

	if !uuidV4.MatchString(ev.DecisionID) {
		t.Errorf("decision_id = %q, want a version 4 UUID", ev.DecisionID)
	}
	wantLabels := map[string]string{"id": "6f1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", "version": "v1.4.0", "region": "eu-west-1"}
	if d := cmp.Diff(ev.Labels, wantLabels); d != "" {
		t.Errorf("labels (-got +want):\n%s", d)
	}
	if d := cmp.Diff(ev.Bundles, map[string]opaBundleInfoV1{"crmgate": {Revision: "4f2c0e9ab1d35c7e8f6a0b2d4c6e8f10"}}); d != "" {
		t.Errorf("bundles (-got +want):\n%s", d)
	}
	if ev.Path != "crmgate/authz/decision" {
		t.Errorf("path = %q, want crmgate/authz/decision", ev.Path)
	}
	if ev.RequestedBy != RequestedBy {
		t.Errorf("requested_by = %q, want %q", ev.RequestedBy, RequestedBy)
	}
	if !ev.Timestamp.Equal(testTime) {
		t.Errorf("timestamp = %s, want %s", ev.Timestamp, testTime)
	}
	if got := ev.Metrics[MetricEvalNS]; got != float64(41000) {
		t.Errorf("metrics.%s = %v, want 41000", MetricEvalNS, got)
	}
	if got := ev.Custom["request_id"]; got != "0193f1c2-7c1e-7000-8000-000000000042" {
		t.Errorf("custom.request_id = %v, want the input's request id", got)
	}
	if ev.RequestID != 0 || ev.Revision != "" || ev.Query != "" {
		t.Errorf("req_id, revision, query = %d, %q, %q; want them absent", ev.RequestID, ev.Revision, ev.Query)
	}
	if ev.Input == nil || ev.Result == nil {
		t.Fatalf("input or result missing: %s", line)
	}
	result, _ := (*ev.Result).(map[string]any)
	wantResult := map[string]any{
		"allow":      true,
		"reason":     "sales may GET contacts.item",
		"redact":     []any{map[string]any{"path": "$..ssn", "action": "remove"}, map[string]any{"path": "$..credit_card", "action": "mask", "keep_last": float64(4)}},
		"rate_limit": map[string]any{"tier": "standard"},
		"audit":      map[string]any{"durability": "async", "tags": []any{"pii"}},
	}
	if d := cmp.Diff(result, wantResult); d != "" {
		t.Errorf("result (-got +want):\n%s", d)
	}
	if ev.Error != nil {
		t.Errorf("error = %s on a decision of the policy", ev.Error)
	}
}

// The key set and types of OPA's own documented example event (OPA docs,
// "Decision Logs"), with what crmgate leaves out marked.
func TestEventKeysAsOPAExample(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	m := decodeEvent(t, encode(l, Entry{Input: testInput(), Decision: testDecision(), Time: testTime}))
	types := map[string]string{}
	for k, v := range m {
		types[k] = reflect.TypeOf(v).String()
	}
	// OPA's example: labels, decision_id, bundles, path, input, result,
	// requested_by, timestamp, metrics, req_id. req_id is OPA's own HTTP
	// request counter; crmgate's request id is a string and goes to
	// custom.request_id instead.
	want := map[string]string{
		"labels":       "map[string]interface {}",
		"decision_id":  "string",
		"bundles":      "map[string]interface {}",
		"path":         "string",
		"input":        "map[string]interface {}",
		"result":       "map[string]interface {}",
		"erased":       "[]interface {}",
		"requested_by": "string",
		"timestamp":    "string",
		"metrics":      "map[string]interface {}",
		"custom":       "map[string]interface {}",
	}
	if d := cmp.Diff(types, want); d != "" {
		t.Errorf("keys and types (-got +want):\n%s", d)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["timestamp"].(string)); err != nil {
		t.Errorf("timestamp is not RFC 3339: %v", err)
	}
	if n, ok := m["metrics"].(map[string]any)[MetricEvalNS].(json.Number); !ok || !isInteger(n) {
		t.Errorf("metrics.%s = %v, want an integer", MetricEvalNS, m["metrics"])
	}
}

func isInteger(n json.Number) bool {
	_, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil
}

// An engine-made deny has no result; its reason and error are the event's
// error, in the shape of OPA's evaluation errors.
func TestEventFailedDecision(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	line := encode(l, Entry{Input: testInput(), Decision: failedDecision(), Time: testTime})
	ev := decodeOPA(t, line)
	if ev.Result != nil {
		t.Errorf("result = %v, want none", *ev.Result)
	}
	var got EvalError
	if err := json.Unmarshal(ev.Error, &got); err != nil {
		t.Fatalf("error %s: %v", ev.Error, err)
	}
	if want := (EvalError{Code: policy.ReasonTimeout, Message: "evaluation exceeded 50ms"}); got != want {
		t.Errorf("error = %+v, want %+v", got, want)
	}
	if got := ev.Metrics[MetricEvalNS]; got != float64(50*time.Millisecond) {
		t.Errorf("metrics = %v", ev.Metrics)
	}
}

// With no set loaded there is no revision, no evaluation and no path:
// bundles and metrics are left out rather than empty.
func TestEventNothingLoaded(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	line := encode(l, Entry{Decision: policy.Decision{Reason: policy.ReasonNotLoaded, Error: "no policy set is loaded"}, RequestID: "r1"})
	m := decodeEvent(t, line)
	for _, k := range []string{"bundles", "metrics", "input", "result", "path", "erased"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present in %s", k, line)
		}
	}
	if m["timestamp"] != "2026-01-02T15:04:05.123456789Z" {
		t.Errorf("timestamp = %v, want the clock's", m["timestamp"])
	}
}

// The events of the golden files are what docs/policy.md shows.
func TestEventGolden(t *testing.T) {
	l := newTestLogger(t, Config{Labels: map[string]string{"env": "prod"}}, nil, Options{})
	var b []byte
	b = append(b, encode(l, Entry{Input: testInput(), Decision: testDecision(), Time: testTime})...)
	b = append(b, encode(l, Entry{Input: testInput(), Decision: failedDecision(), Time: testTime})...)
	golden(t, "events.golden.jsonl", b)
}

// The Event type reads back what Log writes, field for field.
func TestEventType(t *testing.T) {
	l := newTestLogger(t, Config{}, nil, Options{})
	line := encode(l, Entry{Input: testInput(), Decision: failedDecision(), Time: testTime})
	var ev Event
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&ev); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	again, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal(line, &a)
	_ = json.Unmarshal(again, &b)
	if d := cmp.Diff(b, a); d != "" {
		t.Errorf("Event round trip (-got +want):\n%s", d)
	}
}

// Every field of Event is a field of OPA's EventV1 with the same JSON
// name, and opaEventV1 is a faithful copy of OPA's source.
func TestOPAEventV1Mirror(t *testing.T) {
	mirror := jsonTags(reflect.TypeFor[opaEventV1]())
	for name, tag := range jsonTags(reflect.TypeFor[Event]()) {
		if mirror[name] != tag {
			t.Errorf("Event.%s has tag %q; OPA's EventV1 has %q", name, tag, mirror[name])
		}
	}

	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/open-policy-agent/opa").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		// The module is a dependency: make test downloads it.
		t.Fatalf("OPA's source is not in the module cache (go mod download): %v", err)
	}
	src := filepath.Join(dir, "v1", "plugins", "logs", "plugin.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("OPA's decision log event in %s: %v", src, err)
	}
	opa := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "EventV1" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			if fld.Tag == nil || len(fld.Names) == 0 {
				continue
			}
			tag, _ := strconv.Unquote(fld.Tag.Value)
			opa[fld.Names[0].Name] = reflect.StructTag(tag).Get("json")
		}
		return false
	})
	if d := cmp.Diff(mirror, opa); d != "" {
		t.Errorf("opaEventV1 differs from %s (-mirror +OPA):\n%s", src, d)
	}
}

// jsonTags maps the fields of struct type t to their json tags.
func jsonTags(t reflect.Type) map[string]string {
	m := map[string]string{}
	for i := range t.NumField() {
		f := t.Field(i)
		m[f.Name] = f.Tag.Get("json")
	}
	return m
}

func TestDataPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"data.crmgate.authz.decision", "crmgate/authz/decision"},
		{"data.crmgate.authz.admin_decision", "crmgate/authz/admin_decision"},
		{`data.crmgate["a.b"].decision`, "crmgate/a.b/decision"},
		{"data.x", "x"},
		{"not a ref", "not a ref"},
	}
	for _, tt := range tests {
		if got := dataPath(tt.in); got != tt.want {
			t.Errorf("dataPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		var s string
		if err := json.Unmarshal(appendUUID(nil), &s); err != nil {
			t.Fatal(err)
		}
		if !uuidV4.MatchString(s) {
			t.Fatalf("appendUUID = %q, want a version 4 UUID", s)
		}
		if seen[s] {
			t.Fatalf("appendUUID repeated %q", s)
		}
		seen[s] = true
	}
}

// Attack: header values, a claim and a request id holding newlines,
// control characters, bytes that are not UTF-8, U+2028 and megabytes of
// text must each still give exactly one valid JSON line, so that no one
// can forge or split an event.
func TestHostileInputOneLineEach(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	values := []string{
		"x\n{\"decision_id\":\"forged\"}\n",
		"\r\n\t\x00\x1b[31m\x7f",
		"\xff\xfe\xc0\x80 not UTF-8 \xed\xa0\x80",
		"line\u2028separator\u2029",
		`"},"result":{"allow":true`,
		huge,
	}
	for i, v := range values {
		in := testInput()
		in.Request.Headers = map[string]string{"user-agent": v, "x-" + v[:min(len(v), 20)]: v}
		in.Subject.Claims = map[string]any{v[:min(len(v), 20)]: v}
		in.Request.Path = v
		d := testDecision()
		d.Reason = v
		l := newTestLogger(t, Config{MaskDefaults: ptr(false)}, nil, Options{})
		line := encode(l, Entry{Input: in, Decision: d, RequestID: "rid\n\x00" + v[:min(len(v), 20)], Time: testTime})
		m := decodeEvent(t, line)
		if m["decision_id"] != "00000000-0000-4000-8000-000000000001" {
			t.Errorf("value %d: decision_id = %v", i, m["decision_id"])
		}
		// Strings that are UTF-8 survive exactly.
		if strings.ToValidUTF8(v, "") == v {
			ua := m["input"].(map[string]any)["request"].(map[string]any)["headers"].(map[string]any)["user-agent"]
			if ua != v {
				t.Errorf("value %d: user-agent did not survive: %q", i, truncate([]byte(ua.(string))))
			}
		}
	}
}

// The decision log keeps the order of OPA's EventV1 fields, so a line
// reads as OPA's does.
func TestEventKeyOrder(t *testing.T) {
	l := newTestLogger(t, Config{Mask: []string{"/result/reason"}}, nil, Options{})
	line := encode(l, Entry{Input: testInput(), Decision: failedDecision(), Time: testTime})
	line = append(line[:len(line)-1], encode(l, Entry{Input: testInput(), Decision: testDecision(), Time: testTime})...)
	var order []string
	for _, ln := range bytes.Split(bytes.TrimSpace(line), []byte{'\n'}) {
		d := json.NewDecoder(bytes.NewReader(ln))
		_, _ = d.Token()
		for d.More() {
			k, _ := d.Token()
			order = append(order, k.(string))
			var skip json.RawMessage
			_ = d.Decode(&skip)
		}
	}
	var tags []string
	ot := reflect.TypeFor[opaEventV1]()
	for i := range ot.NumField() {
		tags = append(tags, strings.Split(ot.Field(i).Tag.Get("json"), ",")[0])
	}
	last := -1
	for _, k := range order {
		i := slices.Index(tags, k)
		if i < 0 {
			t.Fatalf("key %q is not OPA's", k)
		}
		if i <= last && k != "labels" {
			t.Errorf("key %q out of OPA's order in %v", k, order)
		}
		last = i
		if k == "labels" {
			last = 0
		}
	}
}
