package audit

import (
	"time"
)

// Type names an event: the crmgate event type recorded as unmapped.type.
// Each type has an OCSF class and activity (see classOf and docs/audit.md).
type Type string

// Event types. The auth and session names are those package auth uses.
const (
	// TypeHTTPRequest is the one event of every request, whatever its
	// outcome (OCSF HTTP Activity).
	TypeHTTPRequest Type = "http.request"

	TypeLoginSuccess      Type = "auth.login.success"
	TypeLoginFailure      Type = "auth.login.failure"
	TypeLogout            Type = "auth.logout"
	TypeBackChannelLogout Type = "auth.backchannel_logout"
	TypeRefreshFailure    Type = "auth.refresh.failure"
	TypeStepUpRequest     Type = "auth.step_up.request"
	TypeStepUpSuccess     Type = "auth.step_up.success"
	TypeStepUpFailure     Type = "auth.step_up.failure"
	TypeSessionRevoked    Type = "session.revoked"
	TypeHijackSuspected   Type = "session.hijack_suspected"
	TypeAPIKeyCreated     Type = "apikey.created"
	TypeAPIKeyRotated     Type = "apikey.rotated"
	TypeAPIKeyRevoked     Type = "apikey.revoked"
	TypePolicyReloaded    Type = "policy.reloaded"
	TypePolicyRejected    Type = "policy.rejected"
	TypeConfigLoaded      Type = "config.loaded"
	TypeAdminAction       Type = "admin.action"
	TypeAlert             Type = "alert"
	TypeRetentionDeleted  Type = "audit.retention.deleted"
	TypeLoss              Type = "audit.loss"
)

// Severity is the OCSF severity_id.
type Severity int

// Severities (OCSF severity_id). Zero means the type's default.
const (
	SeverityDefault       Severity = 0
	SeverityInformational Severity = 1
	SeverityLow           Severity = 2
	SeverityMedium        Severity = 3
	SeverityHigh          Severity = 4
	SeverityCritical      Severity = 5
)

// Outcome is the OCSF status_id.
type Outcome int

// Outcomes (OCSF status_id). Zero means derived from the type and, for
// requests, from the response status.
const (
	OutcomeDefault Outcome = 0
	OutcomeSuccess Outcome = 1
	OutcomeFailure Outcome = 2
)

// Subject is who acted (Event.Subject) or who was acted upon
// (Event.Target). The zero value is "nobody" and is left out of the event.
type Subject struct {
	// Kind is user, api_key, service or anonymous (the policy input's
	// subject.kind).
	Kind string
	// ID is the stable identifier (OIDC sub, service client id, API key
	// owner); pseudonymised when the pipeline has a pseudonymisation key.
	ID string
	// Name is a display name or e-mail address; pseudonymised like ID.
	Name string
	// Roles are recorded as OCSF groups.
	Roles []string
	// APIKeyID is the public id of the API key used, never its secret.
	APIKeyID string
}

func (s *Subject) empty() bool {
	return s.Kind == "" && s.ID == "" && s.Name == "" && len(s.Roles) == 0 && s.APIKeyID == ""
}

// Decision is what the policy decided, as far as the audit trail keeps it.
type Decision struct {
	// Evaluated is false when no decision was made (the request failed
	// before the decide stage); the other fields are then ignored.
	Evaluated bool
	Allow     bool
	// Reason is the policy's reason, never shown to the client.
	Reason string
	// StepUp is the ACR a step-up was asked for, empty if none.
	StepUp string
	// Redactions and Filtered count the fields redacted or masked and
	// the rows filtered out of the response.
	Redactions int
	Filtered   int
	// Tags are the policy's audit tags (decision.audit.tags).
	Tags []string
}

// Field is an extra key and value recorded under unmapped. Value is a
// string, bool, an integer type, float64, or anything encoding/json
// encodes.
type Field struct {
	Key   string
	Value any
}

// Event is one audit event. Only Type is required; zero fields are left
// out. Emit reads it before returning and keeps no reference to it.
type Event struct {
	Type Type
	// Time is when it happened; zero means the pipeline's clock at Emit.
	Time     time.Time
	Severity Severity
	Outcome  Outcome
	// Message is a short human-readable summary.
	Message string

	// RequestID is the gateway's request id: http_request.uid and
	// metadata.correlation_uid.
	RequestID string
	RouteID   string
	Method    string
	Host      string
	Path      string
	UserAgent string
	ClientIP  string
	// Status is the HTTP status sent to the client; Bytes the response
	// body length sent.
	Status   int
	Bytes    int64
	Duration time.Duration

	Subject Subject
	// SessionIDHash is the session's storage hash, never the session id.
	SessionIDHash string
	// Fingerprint is the session binding verdict, e.g. "match",
	// "unbound", "changed:ja4,ip_prefix".
	Fingerprint    string
	PolicyRevision string
	Decision       Decision
	// Upstream is the upstream the request was forwarded to, and
	// UpstreamStatus its answer (0: not forwarded).
	Upstream       string
	UpstreamStatus int

	// Reason is a fixed reason code (a failure's, a revocation's).
	Reason string
	// Target is the account acted upon (an API key's owner and id, the
	// user whose session was revoked); zero when it is the Subject.
	Target Subject
	// Action is the operation of admin.action events: create, read,
	// update, delete or another verb.
	Action string
	// Fields are extra values, recorded under unmapped in this order.
	Fields []Field
}
