package policy

import (
	"sync/atomic"
	"time"
)

// Reasons of the denies the engine itself decides, when no valid decision
// came from the policy. Decision.Reason holds one of them and
// Decision.Error says more.
const (
	// ReasonNotLoaded: no policy set has been loaded.
	ReasonNotLoaded = "policy_not_loaded"
	// ReasonUnknownEntrypoint: the route names an entrypoint the active
	// set was not prepared for.
	ReasonUnknownEntrypoint = "entrypoint_unknown"
	// ReasonInputInvalid: the request cannot be represented faithfully
	// in the input (see ErrInputInvalid).
	ReasonInputInvalid = "input_invalid"
	// ReasonUndefined: the entrypoint is undefined for this input.
	ReasonUndefined = "policy_undefined"
	// ReasonError: evaluation failed (a conflict, a built-in error).
	ReasonError = "policy_error"
	// ReasonTimeout: evaluation exceeded Config.EvalTimeout.
	ReasonTimeout = "policy_timeout"
	// ReasonCanceled: the request's context ended during evaluation.
	ReasonCanceled = "policy_canceled"
	// ReasonDecisionInvalid: the policy's answer does not match the
	// decision schema (from an OPA server: nor is it JSON of the Data
	// API's shape within MaxServerResponseBytes).
	ReasonDecisionInvalid = "decision_invalid"
	// ReasonUnavailable: the OPA server (Config.Server) could not be
	// asked or did not answer: connection refused, a TLS failure, a
	// status other than 200 that is not an evaluation error.
	ReasonUnavailable = "policy_unavailable"
)

// Session actions a decision may ask for.
const (
	SessionNone   = "none"
	SessionStepUp = "step_up"
	SessionRevoke = "revoke"
)

// Redaction actions.
const (
	ActionRemove = "remove"
	ActionMask   = "mask"
	ActionHash   = "hash"
)

// Audit durabilities.
const (
	// DurabilityAsync: the audit event is queued; the answer does not
	// wait for it (the default).
	DurabilityAsync = "async"
	// DurabilityStrict: the request waits for a durable write of its
	// audit event, or is refused.
	DurabilityStrict = "strict"
)

// Bounds of a decision, so that a runaway policy cannot hand the later
// stages unbounded work.
const (
	maxListItems = 256
	maxTags      = 64
	maxStringLen = 1024
	maxKeepLast  = 64
	maxAgeLimit  = 366 * 24 * 3600
)

// Decision is the policy's answer for one request, as the contract in
// docs/policy.md defines it, plus what the engine adds (Revision,
// Entrypoint, Error, Elapsed). The zero value denies.
//
// A decision that the engine made because the policy gave none (or gave
// one that does not match the schema) has Allow false, Reason one of the
// Reason constants and a non-empty Error; see Failed.
type Decision struct {
	Allow bool `json:"allow"`
	// Reason explains the decision, for the audit event; never shown to
	// the client.
	Reason string `json:"reason,omitempty"`
	// StepUp, on a deny, says which fresh authentication would change the
	// answer. It is never set on an allow.
	StepUp *StepUp `json:"step_up,omitempty"`
	// Redact lists response fields to remove, mask or hash.
	Redact []Redaction `json:"redact,omitempty"`
	// Filter lists response rows to keep.
	Filter []Filter `json:"filter,omitempty"`
	// RateLimit names the rate-limit tier that applies; nil: the route's
	// default.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// UpstreamHeaders are added to the forwarded request, by canonical
	// header name.
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`
	// SessionAction is SessionNone, SessionStepUp or SessionRevoke;
	// empty means SessionNone.
	SessionAction string `json:"session_action,omitempty"`
	// Audit asks for the audit event's durability and tags.
	Audit *Audit `json:"audit,omitempty"`

	// Revision is the content hash of the policy set that decided; empty
	// when none was loaded. A decision of an OPA server names the
	// server's bundles instead (see Remote).
	Revision string `json:"revision,omitempty"`
	// DecisionID is the id an OPA server gave its decision (when its
	// decision logging is on), to find it in the server's decision log;
	// empty for embedded decisions.
	DecisionID string `json:"decision_id,omitempty"`
	// Entrypoint is the rule that was evaluated.
	Entrypoint string `json:"entrypoint,omitempty"`
	// Error details why the engine denied on the policy's behalf; empty
	// when the policy decided.
	Error string `json:"error,omitempty"`
	// Elapsed is how long the evaluation took.
	Elapsed time.Duration `json:"-"`
	// Reused says that the decision is an identical input's of the same
	// second, not evaluated again (see Config.Reuse).
	Reused bool `json:"-"`
	// Memo is shared by every reuse of one evaluated decision, for what
	// its consumer derives from it once (the gateway's compiled
	// redactions); nil on a failed decision.
	Memo *Memo `json:"-"`
}

// Failed reports whether the engine denied because the policy gave no
// valid decision (undefined, error, timeout, invalid decision or input).
func (d *Decision) Failed() bool { return d.Error != "" }

// StepUp asks for a fresh, stronger authentication (RFC 9470).
type StepUp struct {
	// ACR is the authentication context class required, e.g. mfa.
	ACR string `json:"acr,omitempty"`
	// MaxAgeS is the most seconds since that authentication; 0 means no
	// limit.
	MaxAgeS int64 `json:"max_age_s,omitempty"`
}

// Redaction is one response field treatment.
type Redaction struct {
	// Path is a JSONPath into the response body, e.g. $.items[*].ssn.
	Path string `json:"path"`
	// Action is ActionRemove, ActionMask or ActionHash.
	Action string `json:"action"`
	// KeepLast is how many trailing characters a mask leaves visible.
	KeepLast int `json:"keep_last,omitempty"`
}

// Filter keeps only the rows of a response that match. When Path selects
// an array, its elements that do not match are dropped; when it selects an
// object (e.g. "$", a single record), a record that does not match must
// not reach the client, and on a write it is a precondition on the stored
// record: see docs/policy.md.
type Filter struct {
	Path string `json:"path"`
	// KeepWhere maps a field name to the value it must have; values are
	// strings, booleans or json.Number.
	KeepWhere map[string]any `json:"keep_where"`
}

// RateLimit names a rate-limit tier.
type RateLimit struct {
	Tier string `json:"tier"`
}

// Audit is what the policy asks of the request's audit event.
type Audit struct {
	// Durability is DurabilityAsync (default) or DurabilityStrict.
	Durability string   `json:"durability,omitempty"`
	Tags       []string `json:"tags,omitempty"`
}

// Memo holds one value derived from a decision, shared by the decision's
// reuses. It is safe for concurrent use; Store must always be given the
// same concrete type.
type Memo struct{ v atomic.Value }

// Load returns the stored value, or nil.
func (m *Memo) Load() any { return m.v.Load() }

// Store keeps v.
func (m *Memo) Store(v any) { m.v.Store(v) }
