// Package scope owns the one per-request value that travels through the
// gateway's pipeline in the request context: what each stage learned about
// the request (its id, the client, the route, later the subject, fingerprint
// and decision). Each field is set once, by the stage that owns it; later
// stages read it and never re-parse what an earlier stage parsed.
//
// It holds data only; it does not decide anything.
package scope

import (
	"context"
	"net/netip"
	"time"
)

// Scope is the request-scope value. A nil *Scope means the request did not
// pass through the gateway's intake (only possible in tests).
type Scope struct {
	// ID is the request id: accepted from a trusted proxy, else generated.
	ID string
	// Start is when intake began.
	Start time.Time
	// ClientIP is the client's address: the socket peer, or the address a
	// trusted proxy reported.
	ClientIP netip.Addr
	// Path is the canonical decoded path that routing and policy see.
	Path string
	// EscapedPath is Path as sent upstream (canonical percent-encoding).
	EscapedPath string
	// Method is the effective method (after an allowed method override).
	Method string
	// Route is the matched route, nil before routing or when none matched.
	Route *Route
	// Params are the route's path parameters, decoded.
	Params map[string]string
	// TLS describes the client connection's TLS, nil for plain HTTP.
	TLS *TLSInfo
	// Subject is who is calling; nil before identification.
	Subject *Subject
	// Session is the caller's browser session; nil without one.
	Session *Session
	// Fingerprint is the client fingerprint of the request (component
	// name to value, see package session/fingerprint), computed for
	// requests that carry a session and for the sign-in endpoints, which
	// bind it to a new session; nil otherwise.
	Fingerprint map[string]string
	// Policy is the policy's decision on the request, nil when no policy
	// decided it (no policy stage, or the request ended earlier).
	Policy *PolicyOutcome
	// Redaction is what the response transform did to the response body;
	// nil when the decision asked for no redaction or filtering.
	Redaction *Redaction
	// Status is the status the gateway answered with, filled by the
	// response writer wrapper; 0 until the header is written.
	Status int
	// AuditAdmitted says the audit trail could record when the request
	// arrived: its event is recorded even if the trail's budget runs out
	// meanwhile.
	AuditAdmitted bool
	// Reason says why the gateway refused the request itself, as a fixed
	// code ("invalid_credential", "policy", "rate_limited", …); "" when it
	// did not.
	Reason string
	// UpstreamStatus is the status the upstream answered with; 0 when
	// the request was not forwarded or no answer came.
	UpstreamStatus int
	// Outcome says how the request ended, for logs and metrics:
	// "forwarded", "rejected", "denied", "no_route", "upstream_error",
	// "unauthenticated", "unavailable", "gateway" (the gateway's own
	// endpoints: login callback, logout, JWKS).
	Outcome string
}

// Route is what the pipeline knows of a matched route.
type Route struct {
	ID        string
	Upstream  string
	Tags      []string
	Policy    string
	Pattern   string
	Websocket bool
}

// PolicyOutcome is what later stages, logs and audit events keep of the
// policy's decision.
type PolicyOutcome struct {
	// Revision is the content hash of the policy set that decided.
	Revision string
	// Entrypoint is the rule that was evaluated.
	Entrypoint string
	// Allow is the enforced answer: false when the policy denied or the
	// decision needed a stage the gateway does not run.
	Allow bool
	// Reason is the policy's reason, or the gateway's for a deny it
	// made on the policy's behalf.
	Reason string
	// AuditDurability is the decision's audit.durability ("async",
	// "strict"; "" when it named none); AuditTags its audit.tags.
	AuditDurability string
	AuditTags       []string
	// SessionAction is the decision's session_action ("none", "step_up",
	// "revoke").
	SessionAction string
}

// Redaction is what the response transform (stage 9) did with a
// response whose decision has redact or filter entries, for logs and
// audit events.
type Redaction struct {
	// Result is how the transform ended: RedactApplied, RedactNoBody,
	// RedactPassed, RedactRecordRefused, RedactRefused or RedactAborted
	// (see their comments); "" while the body is still streaming.
	Result string
	// Rules are the decision's redact entries, in order, with how many
	// values each removed or replaced.
	Rules []RedactedRule
	// RowsKept and RowsDropped count the rows of filtered arrays.
	RowsKept, RowsDropped int
	// BytesIn and BytesOut count the upstream's body (after decoding any
	// content coding) and what was sent on.
	BytesIn, BytesOut int64
	// Error is the cause of a refusal or abort, for the log; never shown
	// to the client.
	Error string
}

// Results of a response transform (Redaction.Result).
const (
	// RedactApplied: the whole body was transformed and sent.
	RedactApplied = "redacted"
	// RedactNoBody: the response has no body (HEAD, 204, 304, an empty
	// body); its headers were made safe.
	RedactNoBody = "no_body"
	// RedactPassed: the body is not JSON and the route passes such
	// responses as they are (redact_untransformable: pass).
	RedactPassed = "passed"
	// RedactRecordRefused: a filter refused the record; the client got
	// 404 and nothing of the body.
	RedactRecordRefused = "record_refused"
	// RedactRefused: the body could not be transformed (not JSON,
	// malformed, over a limit, an unsupported content coding, a filter
	// that found no rows); the client got 502 and nothing of the body.
	RedactRefused = "refused"
	// RedactAborted: the body failed after the response had begun, or
	// the client went away; the connection was cut.
	RedactAborted = "aborted"
)

// RedactedRule is one redact entry of a decision and what it did.
type RedactedRule struct {
	Path   string
	Action string
	// Values is how many values the rule removed or replaced.
	Values int
}

// TLSInfo is what the listener captured of the client's TLS connection.
type TLSInfo struct {
	Version     uint16
	CipherSuite uint16
	ALPN        string
	ServerName  string
	// Hello is the ClientHello captured at handshake, nil if not captured.
	Hello *ClientHello
	// JA4 is the connection's client fingerprint (fingerprint.StableJA4
	// of Hello), computed once at handshake; "" without a ClientHello.
	JA4 string
}

// ClientHello keeps the ClientHello fields fingerprinting needs; copies, so
// the handshake's buffers may be reused.
type ClientHello struct {
	CipherSuites      []uint16
	SupportedCurves   []uint16
	SupportedPoints   []uint8
	SignatureSchemes  []uint16
	SupportedProtos   []string
	SupportedVersions []uint16
	Extensions        []uint16
	ServerName        string
}

type ctxKey struct{}

// With returns ctx carrying s.
func With(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// From returns the request's scope, or nil.
func From(ctx context.Context) *Scope {
	s, _ := ctx.Value(ctxKey{}).(*Scope)
	return s
}
