package crm

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Bounds for /api/ws.
const (
	wsReadLimit    = 1 << 20
	wsWriteTimeout = 10 * time.Second
)

// wsEcho is an echo: it greets with {"hello": user}, then sends every
// text or binary message back with the same type until the client closes.
func (s *Server) wsEcho(w http.ResponseWriter, r *http.Request) error {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		// Answer a plain GET in JSON like every other error, rather than
		// with the library's plain-text one.
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return &apiError{Status: http.StatusUpgradeRequired, Public: "websocket upgrade required"}
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The gateway fronts this endpoint and owns origin checks; the
		// Origin it forwards is the browser's, not this server's.
		InsecureSkipVerify: true,
	})
	if err != nil {
		// Accept has already answered; the headers are gone.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "crm websocket handshake failed", slog.Any("error", err))
		return nil
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)

	// The request context is not reliable once the connection is hijacked;
	// the connection itself ends the loop when either side closes it.
	ctx := context.WithoutCancel(r.Context())
	hello, _ := json.Marshal(map[string]string{"hello": s.user(r)})
	if err := s.wsWrite(ctx, c, websocket.MessageText, hello); err != nil {
		return nil
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusNormalClosure && st != websocket.StatusGoingAway {
				s.log.LogAttrs(ctx, slog.LevelDebug, "crm websocket read failed", slog.Any("error", err))
			}
			return nil
		}
		if err := s.wsWrite(ctx, c, typ, msg); err != nil {
			return nil
		}
	}
}

// wsWrite writes one message, bounded so a peer that stops reading cannot
// park the handler.
func (s *Server) wsWrite(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	defer cancel()
	err := c.Write(ctx, typ, msg)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "crm websocket write failed", slog.Any("error", err))
	}
	return err
}

// headerHasToken reports whether any comma-separated element of header
// name equals token, case-insensitively (RFC 9110 §7.6.1, §7.8).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
