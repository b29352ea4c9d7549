package apikey

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/crmgate/crmgate/scope"
)

// Record is one API key as the store keeps it. It never holds the
// plaintext secret, only its hash; String and LogValue omit even that.
// It is JSON-serialisable; the file store's format is a list of these.
type Record struct {
	// ID is the key id, the part of the key between "crm_" and the next
	// "_". It is not secret.
	ID string `json:"id"`
	// Name says what the key is for ("nightly export").
	Name string `json:"name"`
	// Owner is who answers for the key (a person or a team); "" when
	// unknown.
	Owner string `json:"owner,omitempty"`
	// Scopes are what the policy may grant the key; nil means none.
	Scopes []string `json:"scopes,omitempty"`
	// Tier names the key's rate-limit tier; "" means the default.
	Tier string `json:"tier,omitempty"`
	// Created is when the key was created.
	Created time.Time `json:"created"`
	// Expires is when the key stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// LastUsed is when the key was last verified, to the minute; zero
	// means never. Stores never move it backwards.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Disabled is set when the key was revoked. The record stays for
	// audit; Delete removes it.
	Disabled bool `json:"disabled,omitempty"`
	// Hash is HMAC-SHA256, under the gateway's pepper, of the key id and
	// secret (see Manager). Records the Manager returns carry none.
	Hash []byte `json:"hash,omitempty"`
	// Previous is the secret replaced by the last rotation, still accepted
	// until its Until; nil when there is none.
	Previous *Previous `json:"previous,omitempty"`
	// Version counts the writes of the record; the store refuses a write
	// based on an older version (ErrConflict).
	Version uint64 `json:"version"`
}

// Previous is a rotated-out secret during its overlap.
type Previous struct {
	// Hash is the hash of the previous secret (see Record.Hash).
	Hash []byte `json:"hash,omitempty"`
	// Until is when the previous secret stops working.
	Until time.Time `json:"until"`
}

// Key states, as Status reports them.
const (
	StatusActive   = "active"
	StatusExpired  = "expired"
	StatusDisabled = "disabled"
)

// Status returns StatusDisabled, StatusExpired or StatusActive at now.
func (r *Record) Status(now time.Time) string {
	switch {
	case r.Disabled:
		return StatusDisabled
	case r.expired(now):
		return StatusExpired
	}
	return StatusActive
}

func (r *Record) expired(now time.Time) bool {
	return !r.Expires.IsZero() && !now.Before(r.Expires)
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Hash = slices.Clone(r.Hash)
	if r.Previous != nil {
		p := *r.Previous
		p.Hash = slices.Clone(p.Hash)
		c.Previous = &p
	}
	return &c
}

// redacted returns a copy of r without hashes, for the Manager's callers.
func (r *Record) redacted() *Record {
	c := *r
	c.Scopes = slices.Clone(r.Scopes)
	c.Hash = nil
	if r.Previous != nil {
		c.Previous = &Previous{Until: r.Previous.Until}
	}
	return &c
}

// String describes the key without its hashes. It and GoString and
// LogValue have value receivers so that a Record printed by value is
// redacted too.
func (r Record) String() string {
	return fmt.Sprintf("apikey %s %q (owner %q, scopes %v, tier %q)", r.ID, r.Name, r.Owner, r.Scopes, r.Tier)
}

// GoString is String, so that %#v does not print the hashes either.
func (r Record) GoString() string { return r.String() }

// LogValue logs the key's attributes without its hashes.
func (r Record) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", r.ID),
		slog.String("name", r.Name),
		slog.String("owner", r.Owner),
		slog.Any("scopes", r.Scopes),
		slog.String("tier", r.Tier),
		slog.Time("created", r.Created),
		slog.Bool("disabled", r.Disabled),
		slog.Uint64("version", r.Version),
	}
	if !r.Expires.IsZero() {
		attrs = append(attrs, slog.Time("expires", r.Expires))
	}
	if !r.LastUsed.IsZero() {
		attrs = append(attrs, slog.Time("last_used", r.LastUsed))
	}
	if r.Previous != nil {
		attrs = append(attrs, slog.Time("previous_until", r.Previous.Until))
	}
	return slog.GroupValue(attrs...)
}

// Subject returns the key as the request scope describes callers.
func (r *Record) Subject() *scope.Subject {
	return &scope.Subject{
		Kind: scope.KindAPIKey,
		ID:   r.ID,
		APIKey: &scope.APIKey{
			ID:     r.ID,
			Name:   r.Name,
			Owner:  r.Owner,
			Scopes: slices.Clone(r.Scopes),
			Tier:   r.Tier,
		},
	}
}

// check reports what makes a stored record unusable.
func (r *Record) check() error {
	switch {
	case !ValidID(r.ID):
		return fmt.Errorf("id %q is not a key id", r.ID)
	case len(r.Hash) != hashLen:
		return fmt.Errorf("key %s: hash is %d bytes, want %d", r.ID, len(r.Hash), hashLen)
	case r.Previous != nil && len(r.Previous.Hash) != hashLen:
		return fmt.Errorf("key %s: previous hash is %d bytes, want %d", r.ID, len(r.Previous.Hash), hashLen)
	}
	return nil
}
