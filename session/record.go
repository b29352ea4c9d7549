package session

import (
	"maps"
	"slices"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// Record is one session. Its exported fields are what the store keeps,
// sealed; it is JSON-serialisable. The auth stage fills the subject and
// tokens at login; Manager.Start sets the times and the id.
type Record struct {
	id  ID
	key string

	// UserID is the stable user identifier (OIDC sub or username); it also
	// keys the per-user index that RevokeUser uses.
	UserID string   `json:"user_id"`
	Email  string   `json:"email,omitempty"`
	Roles  []string `json:"roles,omitempty"`
	Groups []string `json:"groups,omitempty"`
	ACR    string   `json:"acr,omitempty"`
	AMR    []string `json:"amr,omitempty"`
	// AuthTime is when the user last actively authenticated (OIDC
	// auth_time); zero when unknown.
	AuthTime time.Time      `json:"auth_time,omitzero"`
	Claims   map[string]any `json:"claims,omitempty"`

	Tokens Tokens `json:"tokens"`

	// Created is when the session started. LastSeen is the last Save.
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	// IdleExpires is when the session ends unless saved again; it never
	// passes Expires, the absolute end.
	IdleExpires time.Time `json:"idle_expires"`
	Expires     time.Time `json:"expires"`

	// Fingerprint is the client fingerprint bound at login, opaque to this
	// package; nil when none is bound.
	Fingerprint map[string]string `json:"fingerprint,omitempty"`

	// Version counts the writes of the session; the store refuses a write
	// based on an older version (ErrConflict).
	Version uint64 `json:"version"`
}

// Tokens are what a session keeps of its OIDC tokens. They never leave
// the gateway.
//
// The access token is not kept: the gateway checks it at sign-in and at
// each refresh (at_hash, OIDC Core §3.1.3.8) but never sends it anywhere,
// so keeping it would only put a bearer token into every store dump and
// a kilobyte into every session. Records written before carry it as
// access_token, which decoding ignores.
type Tokens struct {
	// IDToken is the last ID token, sent back as id_token_hint at logout
	// (OpenID Connect RP-Initiated Logout 1.0 §2).
	IDToken string `json:"id_token,omitempty"`
	// RefreshToken renews the grant (RFC 6749 §6).
	RefreshToken string `json:"refresh_token,omitempty"`
	// Expiry is when the access token expires, which is when the grant is
	// next renewed; zero when unknown.
	Expiry time.Time `json:"expiry,omitzero"`
}

// ID returns the session's id; zero before Start or Load.
func (r *Record) ID() ID { return r.id }

// Hash returns the session's storage key, an HMAC of its id: safe to log
// and to show in the admin API; "" before Start or Load.
func (r *Record) Hash() string { return r.key }

// Clone returns a deep copy of r. Claims are copied through nested
// JSON-shaped values (map[string]any, []any); other values are shared.
func (r *Record) Clone() *Record {
	c := *r
	c.Roles = slices.Clone(r.Roles)
	c.Groups = slices.Clone(r.Groups)
	c.AMR = slices.Clone(r.AMR)
	c.Claims = cloneClaims(r.Claims)
	c.Fingerprint = maps.Clone(r.Fingerprint)
	return &c
}

func cloneClaims(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSON(v)
	}
	return out
}

func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneClaims(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}

// Subject returns the session's user as the request scope describes callers.
func (r *Record) Subject() *scope.Subject {
	return &scope.Subject{
		Kind:     scope.KindUser,
		ID:       r.UserID,
		Email:    r.Email,
		Roles:    slices.Clone(r.Roles),
		Groups:   slices.Clone(r.Groups),
		ACR:      r.ACR,
		AMR:      slices.Clone(r.AMR),
		AuthTime: r.AuthTime,
		Claims:   cloneClaims(r.Claims),
	}
}

// Summary describes a session for listings (`crmgate session list`, the
// admin API). It never carries tokens or the id itself.
type Summary struct {
	// Hash is the storage key (see Record.Hash).
	Hash        string    `json:"id_hash"`
	UserID      string    `json:"user_id,omitempty"`
	Created     time.Time `json:"created,omitzero"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	IdleExpires time.Time `json:"idle_expires,omitzero"`
	Expires     time.Time `json:"expires,omitzero"`
	// Unreadable marks a session sealed under a key no longer in the ring
	// (or damaged); only Hash and IdleExpires are known.
	Unreadable bool `json:"unreadable,omitempty"`
}
