package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/crmgate/crmgate/i18n"
	"github.com/crmgate/crmgate/proxy/framing"
	"github.com/crmgate/crmgate/scope"
)

// Auditor records one event for every request, whatever its outcome
// (stage 11): the audit trail in production.
type Auditor interface {
	// Accepting reports whether events can be recorded now. When it is
	// false the gateway refuses requests with 503 ("no audit, no
	// access"): the trail's spool is full and it is configured to refuse.
	Accepting() bool
	// Request records a finished request. It must not block.
	Request(ctx context.Context, rec *AuditRecord)
	// RequestDurable records the request and returns once its event is
	// durably written (a decision's audit.durability strict).
	RequestDurable(ctx context.Context, rec *AuditRecord) error
}

// AuditRecord is what the gateway knows of a request when it records it:
// the request scope (client, route, subject, session, fingerprint verdict,
// decision, redaction) and the response.
type AuditRecord struct {
	Scope   *scope.Scope
	Request *http.Request
	// Status is the status the client was answered with (499 when it went
	// away before an answer).
	Status int
	// Bytes is the response body bytes written to the client.
	Bytes int64
	// Duration is the time from intake to the record.
	Duration time.Duration
	// Started says the record was made when the response started, not
	// when it ended (strict routes): Bytes and Duration are up to then.
	Started bool
}

// strict reports whether the request's decision asks for a durable audit
// write before the client is answered.
func strict(s *scope.Scope) bool {
	return s.Policy != nil && s.Policy.AuditDurability == "strict"
}

// auditStarted makes the durable record of a strict request when its
// response starts, before the client sees any of it. When the write fails
// the client is answered 503 instead and the upstream's body is discarded:
// no answer leaves the gateway without its audit event.
func (w *statusWriter) auditStarted(code int) (refused bool) {
	g := w.g
	w.recorded = true
	rec := &AuditRecord{Scope: w.s, Request: w.r, Status: code, Bytes: 0, Duration: g.now().Sub(w.s.Start), Started: true}
	err := g.auditor.RequestDurable(w.r.Context(), rec)
	if err == nil {
		return false
	}
	g.log.LogAttrs(w.r.Context(), slog.LevelError, "strict audit write failed; answer withheld",
		slog.String("request_id", w.s.ID), slog.Int("status", code), slog.Any("err", err))
	g.metrics.rejected.WithLabelValues("audit").Inc()
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	g.security.apply(h)
	h[g.ridHeader] = []string{w.s.ID}
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	lang := i18n.For(w.r)
	i18n.SetHeaders(h, lang)
	w.s.Status, w.s.Outcome = http.StatusServiceUnavailable, "audit_unavailable"
	w.discard = true
	w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
	b, _ := json.Marshal(map[string]any{"type": "about:blank", "title": "Service Unavailable", "status": http.StatusServiceUnavailable,
		"detail": i18n.T(lang, "proxy.error.audit_write_failed"), "request_id": w.s.ID})
	_, _ = w.ResponseWriter.Write(b)
	return true
}

// auditRefusedHead records a request whose head broke HTTP/1.1 framing
// (too large, malformed, a smuggling attempt): the HTTP server answered
// it 400 and closed the connection without the gateway's handler seeing
// it, so this is its only event.
func (g *Gateway) auditRefusedHead(hc *h1Conn) {
	var fe *framing.Error
	if g.auditor == nil || !errors.As(hc.Err(), &fe) || !fe.InHead() {
		return
	}
	s := &scope.Scope{ID: newRequestID(), Start: g.now(), TLS: hc.info.tls, Outcome: "rejected", Reason: "framing: " + fe.Reason,
		Status: http.StatusBadRequest, AuditAdmitted: g.auditor.Accepting()}
	if ap, err := netip.ParseAddrPort(hc.RemoteAddr().String()); err == nil {
		s.ClientIP = ap.Addr().Unmap()
	}
	g.metrics.rejected.WithLabelValues("framing").Inc()
	g.auditor.Request(context.Background(), &AuditRecord{Scope: s, Status: http.StatusBadRequest})
}
