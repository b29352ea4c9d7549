package auth

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/crmgate/crmgate/session"
)

// Revocation says why a policy ended a session (decision session_action:
// revoke) and, when the client's fingerprint no longer matched the one
// bound at login, both fingerprints.
type Revocation struct {
	// Reason is the policy's reason.
	Reason string
	// Bound is the fingerprint bound at login; Current the request's.
	Bound, Current map[string]string
	// Changed names the components that differ; empty when the
	// fingerprint matched (the policy revoked for another reason).
	Changed []string
}

// hijack reports whether the revocation is for a fingerprint mismatch.
func (v Revocation) hijack() bool { return len(v.Changed) > 0 }

// Revoke ends the request's session rec because the policy said so
// (session_action: revoke), and answers the request as for a caller
// without a session: browsers are sent to sign in, scripts get 401. The
// session is deleted from the store, so every replica sharing it refuses
// the cookie from then on, and the cookie is expired on the response.
//
// A revocation for a changed fingerprint is a session.hijack_suspected
// event of high severity carrying both fingerprints; any other is
// session.revoked. If the store cannot delete the session the event says
// so and the request is still refused: nothing is forwarded.
func (rp *RP) Revoke(w http.ResponseWriter, r *http.Request, rec *session.Record, v Revocation) {
	e := Event{Type: EventSessionRevoked, Subject: rec.UserID, SessionHash: rec.Hash(), Severity: SeverityMedium, Detail: v.Reason}
	if v.hijack() {
		e.Type, e.Severity = EventHijackSuspected, SeverityHigh
		e.Fingerprint = &FingerprintChange{Bound: v.Bound, Current: v.Current, Changed: v.Changed}
	}
	if err := rp.sessions.End(context.WithoutCancel(r.Context()), w, rec.ID()); err != nil {
		rp.log.LogAttrs(r.Context(), slog.LevelError, "auth: revoking session", slog.String("id_hash", rec.Hash()), slog.Any("err", err))
		e.Reason = ReasonSessionStore
	}
	rp.emit(r, e)
	rp.Challenge(w, r)
}
