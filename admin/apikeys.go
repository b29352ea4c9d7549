package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
)

// APIKeys is what the API key endpoints need of the key manager
// (*apikey.Manager).
type APIKeys interface {
	Create(ctx context.Context, spec apikey.Spec) (string, *apikey.Record, error)
	List(ctx context.Context) ([]*apikey.Record, error)
	Get(ctx context.Context, id string) (*apikey.Record, error)
	Revoke(ctx context.Context, id string) error
	Rotate(ctx context.Context, id string, overlap time.Duration) (string, *apikey.Record, error)
	Delete(ctx context.Context, id string) error
}

// SetAPIKeys enables the API key endpoints:
//
//	GET    /apikeys                list keys (never secrets or hashes)
//	POST   /apikeys                create: {"name","owner","scopes","tier","ttl"} → the key, shown once
//	GET    /apikeys/{id}           one key
//	POST   /apikeys/{id}/revoke    disable it at once
//	POST   /apikeys/{id}/rotate    new secret: {"overlap":"24h"} keeps the old one that long
//	DELETE /apikeys/{id}           remove the record
//
// Like the session endpoints they always require the admin token.
func (s *Server) SetAPIKeys(m APIKeys) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKeys = m
}

func (s *Server) keyManager(w http.ResponseWriter) APIKeys {
	s.mu.Lock()
	m := s.apiKeys
	s.mu.Unlock()
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "API keys are not configured (no api_keys section)"})
	}
	return m
}

func (s *Server) apiKeyRoutes(mux *http.ServeMux) {
	h := func(f func(http.ResponseWriter, *http.Request, APIKeys)) http.Handler {
		return s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m := s.keyManager(w); m != nil {
				f(w, r, m)
			}
		}))
	}
	mux.Handle("GET /apikeys", h(s.listKeys))
	mux.Handle("POST /apikeys", h(s.createKey))
	mux.Handle("GET /apikeys/{id}", h(s.showKey))
	mux.Handle("POST /apikeys/{id}/revoke", h(s.revokeKey))
	mux.Handle("POST /apikeys/{id}/rotate", h(s.rotateKey))
	mux.Handle("DELETE /apikeys/{id}", h(s.deleteKey))
}

// maxKeyBody bounds create and rotate requests.
const maxKeyBody = 16 << 10

// CreateKeyRequest is the body of POST /apikeys.
type CreateKeyRequest struct {
	Name   string   `json:"name"`
	Owner  string   `json:"owner,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	Tier   string   `json:"tier,omitempty"`
	// TTL is a Go duration ("720h"); empty: the key does not expire.
	TTL string `json:"ttl,omitempty"`
}

// RotateKeyRequest is the body of POST /apikeys/{id}/rotate.
type RotateKeyRequest struct {
	// Overlap is how long the old secret keeps working ("24h"); empty: 0.
	Overlap string `json:"overlap,omitempty"`
}

// KeyResponse answers create and rotate: the key in plaintext, which is
// never shown again, and its record.
type KeyResponse struct {
	Key    string         `json:"key"`
	Record *apikey.Record `json:"record"`
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, m APIKeys) {
	list, err := m.List(r.Context())
	if err != nil {
		s.keyError(w, r, "listing API keys", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": list, "count": len(list)})
}

func (s *Server) showKey(w http.ResponseWriter, r *http.Request, m APIKeys) {
	rec, err := m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.keyError(w, r, "reading an API key", err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request, m APIKeys) {
	var req CreateKeyRequest
	if !decodeBody(w, r, maxKeyBody, &req) {
		return
	}
	spec := apikey.Spec{Name: req.Name, Owner: req.Owner, Scopes: req.Scopes, Tier: req.Tier}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `ttl must be a positive duration such as "720h"`})
			return
		}
		spec.TTL = d
	}
	key, rec, err := m.Create(r.Context(), spec)
	if err != nil {
		s.keyError(w, r, "creating an API key", err)
		return
	}
	s.auditKey(r, "created", rec.ID, slog.String("name", rec.Name))
	writeJSON(w, http.StatusCreated, KeyResponse{Key: key, Record: rec})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request, m APIKeys) {
	id := r.PathValue("id")
	if err := m.Revoke(r.Context(), id); err != nil {
		s.keyError(w, r, "revoking an API key", err)
		return
	}
	s.auditKey(r, "revoked", id)
	writeJSON(w, http.StatusOK, map[string]any{"revoked": id})
}

func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request, m APIKeys) {
	var req RotateKeyRequest
	if r.ContentLength != 0 && !decodeBody(w, r, maxKeyBody, &req) {
		return
	}
	var overlap time.Duration
	if req.Overlap != "" {
		d, err := time.ParseDuration(req.Overlap)
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `overlap must be a duration such as "24h"`})
			return
		}
		overlap = d
	}
	key, rec, err := m.Rotate(r.Context(), r.PathValue("id"), overlap)
	if err != nil {
		s.keyError(w, r, "rotating an API key", err)
		return
	}
	s.auditKey(r, "rotated", rec.ID, slog.Duration("overlap", overlap))
	writeJSON(w, http.StatusOK, KeyResponse{Key: key, Record: rec})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, m APIKeys) {
	id := r.PathValue("id")
	if err := m.Delete(r.Context(), id); err != nil {
		s.keyError(w, r, "deleting an API key", err)
		return
	}
	s.auditKey(r, "deleted", id)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

// auditKey logs a change of an API key; changes of credentials are
// security events.
func (s *Server) auditKey(r *http.Request, what, id string, attrs ...slog.Attr) {
	s.emit(r, Event{Type: "apikey." + what, Target: id}, attrs...)
}

func (s *Server) keyError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such API key"})
	case errors.Is(err, apikey.ErrInvalid), errors.Is(err, apikey.ErrExists):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	case errors.Is(err, apikey.ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]string{"error": "the key changed meanwhile; try again"})
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "admin: "+what+" failed", slog.Any("err", err))
		status := http.StatusInternalServerError
		if errors.Is(err, apikey.ErrUnavailable) {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]string{"error": what + " failed; see the log"})
	}
}

// decodeBody reads one JSON object of at most limit bytes with no unknown
// fields into v, answering 400/415 itself when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"error": "send application/json"})
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON body: " + err.Error()})
		return false
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "one JSON object expected"})
		return false
	}
	return true
}
