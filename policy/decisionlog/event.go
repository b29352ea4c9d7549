package decisionlog

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/policy"
)

// RequestedBy is the event's requested_by: in OPA the address of the
// client that asked for the decision, here the gateway, which asks for
// every one. The client's address is input.request.client_ip.
const RequestedBy = "crmgate"

// MetricEvalNS is the key of the event's metrics that holds the
// evaluation time in nanoseconds, as OPA names it.
const MetricEvalNS = "timer_rego_query_eval_ns"

// Entry is one decision to log. Log reads it before returning and keeps no
// reference to it.
type Entry struct {
	// Input is what the policy decided on; nil logs no input. It is
	// encoded, never changed: masks apply to the copy that is logged.
	Input *policy.Input
	// Decision is the engine's answer. The policy's own answer is the
	// event's result; when the engine denied on the policy's behalf
	// (Decision.Failed) there is none, and its reason and error are the
	// event's error.
	Decision policy.Decision
	// RequestID is the gateway's request id, the event's
	// custom.request_id; empty means Input.Request.ID.
	RequestID string
	// Time is when the decision was made, the event's timestamp; zero
	// means the logger's clock at Log.
	Time time.Time
}

// Event is one line of the decision log: OPA's decision log event
// (EventV1 of github.com/open-policy-agent/opa/v1/plugins/logs), with the
// fields crmgate fills and OPA's JSON names and types. Log writes lines of
// this shape; Event is for reading them back.
type Event struct {
	// Labels are the instance's: id, version and Config.Labels.
	Labels map[string]string `json:"labels"`
	// DecisionID is a random UUID (version 4) per decision.
	DecisionID string `json:"decision_id"`
	// Bundles names the policy set and its revision; absent when no set
	// was loaded.
	Bundles map[string]BundleInfo `json:"bundles,omitempty"`
	// Path is the entrypoint as OPA's data API path, without data:
	// crmgate/authz/decision.
	Path string `json:"path,omitempty"`
	// Input is the masked input; absent when erased as a whole.
	Input json.RawMessage `json:"input,omitempty"`
	// Result is the policy's decision, masked; absent when the engine
	// denied on the policy's behalf.
	Result json.RawMessage `json:"result,omitempty"`
	// Erased lists the pointers of the fields that were removed.
	Erased []string `json:"erased,omitempty"`
	// Masked lists the pointers of the fields that were replaced.
	Masked []string `json:"masked,omitempty"`
	// Error is why the engine denied on the policy's behalf, in the form
	// of OPA's evaluation errors.
	Error *EvalError `json:"error,omitempty"`
	// RequestedBy is always RequestedBy.
	RequestedBy string    `json:"requested_by,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	// Metrics holds MetricEvalNS when the policy was evaluated.
	Metrics map[string]any `json:"metrics,omitempty"`
	// Custom holds request_id, the gateway's request id.
	Custom map[string]any `json:"custom,omitempty"`
}

// BundleInfo is the revision of a policy set, as OPA logs a bundle's.
type BundleInfo struct {
	Revision string `json:"revision,omitempty"`
}

// EvalError is an error as OPA writes an evaluation error (topdown.Error):
// Code is the decision's Reason (policy_timeout and the like), Message its
// Error.
type EvalError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Pointers of whole documents that could not be encoded and were left
// out, as JSON strings.
var (
	inputPointerJSON  = appendString(nil, "/"+rootInput)
	resultPointerJSON = appendString(nil, "/"+rootResult)
)

// encodeState is the scratch space of one Log call.
type encodeState struct {
	// input holds the unmasked input's JSON.
	input []byte
	fb    fallback
	// res, doc and enc encode the result.
	res policy.Decision
	doc bytes.Buffer
	enc *json.Encoder
	notes
}

func newEncodeState() any {
	st := &encodeState{}
	st.enc = json.NewEncoder(&st.doc)
	st.enc.SetEscapeHTML(false)
	return st
}

// encodeDoc encodes v with encoding/json into st.doc and returns its JSON.
func (st *encodeState) encodeDoc(v any) ([]byte, bool) {
	st.doc.Reset()
	if err := st.enc.Encode(v); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(st.doc.Bytes(), []byte{'\n'}), true
}

// appendEvent appends e's event, one JSON line with its newline.
func (l *Logger) appendEvent(dst []byte, e *Entry) []byte {
	st := l.states.Get().(*encodeState)
	st.erased, st.masked = st.erased[:0], st.masked[:0]
	defer func() {
		if st.doc.Cap() <= maxPooled && cap(st.input) <= maxPooled && st.fb.buf.Cap() <= maxPooled {
			l.states.Put(st)
		}
	}()
	d := &e.Decision

	dst = append(dst, `{"labels":`...)
	dst = append(dst, l.labelsJSON...)
	dst = append(dst, `,"decision_id":`...)
	dst = l.newID(dst)
	if d.Revision != "" {
		dst = append(dst, `,"bundles":{`...)
		dst = append(dst, l.bundleJSON...)
		dst = append(dst, `:{"revision":`...)
		dst = appendString(dst, d.Revision)
		dst = append(dst, "}}"...)
	}
	if d.Entrypoint != "" {
		dst = append(dst, `,"path":`...)
		dst = append(dst, l.pathJSON(d.Entrypoint)...)
	}
	if e.Input != nil {
		mark := len(dst)
		dst = append(dst, `,"input":`...)
		var ok bool
		st.input, ok = appendInput(st.input[:0], e.Input, &st.fb)
		if !ok {
			// A claim with no JSON form (the policy saw an invalid
			// input and denied): the rest of the event still tells
			// what happened.
			st.erased = append(st.erased, inputPointerJSON)
			dst = dst[:mark]
		} else if dst, ok = appendDoc(dst, l.mask.input, st.input, &st.notes); !ok {
			dst = dst[:mark]
		}
	}
	if !d.Failed() {
		// The policy's answer, without what the engine adds (it is in
		// bundles and path).
		st.res = *d
		st.res.Revision, st.res.Entrypoint, st.res.Error = "", "", ""
		mark := len(dst)
		dst = append(dst, `,"result":`...)
		doc, ok := st.encodeDoc(&st.res)
		st.res = policy.Decision{} // the pool must not keep the caller's maps
		if !ok {
			st.erased = append(st.erased, resultPointerJSON)
			dst = dst[:mark]
		} else if dst, ok = appendDoc(dst, l.mask.result, doc, &st.notes); !ok {
			dst = dst[:mark]
		}
	}
	dst = appendList(dst, `,"erased":[`, st.erased)
	dst = appendList(dst, `,"masked":[`, st.masked)
	if d.Failed() {
		dst = append(dst, `,"error":{"code":`...)
		dst = appendString(dst, d.Reason)
		dst = append(dst, `,"message":`...)
		dst = appendString(dst, d.Error)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"requested_by":"`+RequestedBy+`","timestamp":"`...)
	t := e.Time
	if t.IsZero() {
		t = l.now()
	}
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if d.Elapsed > 0 {
		dst = append(dst, `,"metrics":{"`+MetricEvalNS+`":`...)
		dst = strconv.AppendInt(dst, int64(d.Elapsed), 10)
		dst = append(dst, '}')
	}
	rid := e.RequestID
	if rid == "" && e.Input != nil {
		rid = e.Input.Request.ID
	}
	if rid != "" {
		dst = append(dst, `,"custom":{"request_id":`...)
		dst = appendString(dst, rid)
		dst = append(dst, '}')
	}
	return append(dst, "}\n"...)
}

func appendList(dst []byte, head string, items [][]byte) []byte {
	if len(items) == 0 {
		return dst
	}
	dst = append(dst, head...)
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	return append(dst, ']')
}

// pathJSON returns the JSON string of the OPA data API path of entrypoint,
// remembering it: a gateway has a handful of entrypoints.
func (l *Logger) pathJSON(entrypoint string) []byte {
	if p, ok := l.paths.Load(entrypoint); ok {
		return p.([]byte)
	}
	p := appendString(nil, dataPath(entrypoint))
	l.paths.Store(entrypoint, p)
	return p
}

// dataPath is the path OPA logs for a query of the rule ref: the ref
// without data, slash-separated, as in /v1/data/crmgate/authz/decision.
// A ref that does not parse is returned as it is.
func dataPath(ref string) string {
	r, err := ast.ParseRef(ref)
	if err != nil || !r.HasPrefix(ast.DefaultRootRef) {
		return ref
	}
	parts := make([]string, 0, len(r)-1)
	for _, t := range r[1:] {
		if s, ok := t.Value.(ast.String); ok {
			parts = append(parts, string(s))
		} else {
			parts = append(parts, t.String())
		}
	}
	return strings.Join(parts, "/")
}

// appendUUID appends a random (version 4) UUID as a JSON string
// (RFC 9562 §5.4).
func appendUUID(dst []byte) []byte {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	dst = append(dst, '"')
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, '"')
}
