package auth

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// Event types.
const (
	EventLoginSuccess      = "auth.login.success"
	EventLoginFailure      = "auth.login.failure"
	EventLogout            = "auth.logout"
	EventBackChannelLogout = "auth.backchannel_logout"
	EventRefreshFailure    = "auth.refresh.failure"
	EventStepUpRequest     = "auth.step_up.request"
	EventStepUpSuccess     = "auth.step_up.success"
	EventStepUpFailure     = "auth.step_up.failure"
	// EventHijackSuspected: a session was used by another client than
	// the one it is bound to, and the policy revoked it.
	EventHijackSuspected = "session.hijack_suspected"
	// EventSessionRevoked: the policy revoked a session for another
	// reason.
	EventSessionRevoked = "session.revoked"
)

// Severities of events; an event without one is informational.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// Reasons of failure events: fixed codes, so that nothing a client or the
// provider wrote (least of all a token) reaches the audit trail.
const (
	ReasonIdPUnavailable     = "idp_unavailable"
	ReasonNoState            = "state_missing"
	ReasonUnknownState       = "state_unknown"
	ReasonStateReplay        = "state_replay"
	ReasonLoginExpired       = "login_expired"
	ReasonIssuerMismatch     = "iss_mismatch"
	ReasonIssuerMissing      = "iss_missing"
	ReasonProviderError      = "provider_error"
	ReasonNoCode             = "code_missing"
	ReasonCodeExchange       = "code_exchange"
	ReasonNoIDToken          = "id_token_missing"
	ReasonIDToken            = "id_token_invalid"
	ReasonNonce              = "nonce_mismatch"
	ReasonAccessToken        = "access_token_invalid"
	ReasonUserInfo           = "userinfo_invalid"
	ReasonSessionStore       = "session_store"
	ReasonRefreshRejected    = "refresh_rejected"
	ReasonRefreshUnavailable = "refresh_unavailable"
	ReasonLocal              = "local"
	ReasonProviderLogout     = "provider_logout"
	ReasonStepUpSubject      = "step_up_other_user"
	ReasonStepUpWeak         = "step_up_too_weak"
	ReasonStepUpNoSession    = "step_up_no_session"
)

// Event is a security event of the relying party. It never carries a token,
// a session id or a code; SessionHash is the session's storage key
// (session.Record.Hash), safe to log.
type Event struct {
	// Type is one of the Event* constants.
	Type string
	Time time.Time
	// Subject is the user (OIDC sub), empty when not known.
	Subject     string
	SessionHash string
	ClientIP    string
	// Reason is one of the Reason* constants for failures; for a
	// provider error it is ReasonProviderError followed by ":" and the
	// provider's error code when that code is a plain OAuth error code.
	Reason string
	// Severity is SeverityHigh or SeverityMedium for events the security
	// team should look at; "" otherwise.
	Severity string
	// Detail is the policy's reason for a revocation.
	Detail string
	// Fingerprint is set for EventHijackSuspected.
	Fingerprint *FingerprintChange
}

// FingerprintChange is the client fingerprint bound to a session at login
// and the one a request came with (component name to value, see package
// session/fingerprint), and which components differ.
type FingerprintChange struct {
	Bound   map[string]string
	Current map[string]string
	Changed []string
}

// EventSink receives the relying party's security events, for the audit
// trail. Emit must not block for long: it runs on the request path.
type EventSink interface {
	Emit(ctx context.Context, e Event)
}

// logSink is the default EventSink: one log line per event.
type logSink struct{ log *slog.Logger }

// LogSink is the EventSink the relying party uses by default: one log line
// per event (error level for high severity, warning for failures and
// medium severity).
func LogSink(log *slog.Logger) EventSink { return logSink{log: log} }

// Sinks sends every event to each of sinks, in order.
func Sinks(sinks ...EventSink) EventSink { return teeSink(sinks) }

type teeSink []EventSink

func (t teeSink) Emit(ctx context.Context, e Event) {
	for _, s := range t {
		s.Emit(ctx, e)
	}
}

func (s logSink) Emit(ctx context.Context, e Event) {
	level := slog.LevelInfo
	switch {
	case e.Severity == SeverityHigh:
		level = slog.LevelError
	case e.Type == EventLoginFailure || e.Type == EventRefreshFailure || e.Severity != "":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("subject", e.Subject),
		slog.String("id_hash", e.SessionHash),
		slog.String("client_ip", e.ClientIP),
		slog.String("reason", e.Reason),
	}
	if e.Severity != "" {
		attrs = append(attrs, slog.String("severity", e.Severity), slog.String("detail", e.Detail))
	}
	if fp := e.Fingerprint; fp != nil {
		attrs = append(attrs, slog.Any("changed", fp.Changed), slog.Any("bound_fingerprint", fp.Bound), slog.Any("fingerprint", fp.Current))
	}
	s.log.LogAttrs(ctx, level, "auth: "+e.Type, attrs...)
}

// emit sends an event stamped with the clock and the request's client.
func (rp *RP) emit(r *http.Request, e Event) {
	e.Time = rp.now()
	if r != nil {
		e.ClientIP = clientIP(r)
		rp.events.Emit(r.Context(), e)
		return
	}
	rp.events.Emit(context.Background(), e)
}

// clientIP is the address the gateway's intake established, or the socket
// peer when the request did not pass through it.
func clientIP(r *http.Request) string {
	if s := scope.From(r.Context()); s != nil && s.ClientIP.IsValid() {
		return s.ClientIP.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
