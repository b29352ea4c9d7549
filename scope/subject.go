package scope

import "time"

// Subject kinds, as the policy contract names them.
const (
	KindUser      = "user"
	KindAPIKey    = "api_key"
	KindService   = "service"
	KindAnonymous = "anonymous"
)

// Subject is who is calling, as the identify stage established it. A nil
// *Subject in a Scope means identification has not run; an anonymous caller
// is a Subject with Kind KindAnonymous.
type Subject struct {
	// Kind is KindUser, KindAPIKey, KindService or KindAnonymous.
	Kind string
	// ID is the stable identifier: the OIDC subject or username, the API
	// key id, the machine client id; empty for anonymous callers.
	ID     string
	Email  string
	Roles  []string
	Groups []string
	// ACR, AMR and AuthTime describe the authentication (OIDC acr, amr,
	// auth_time); zero when not applicable.
	ACR      string
	AMR      []string
	AuthTime time.Time
	// APIKey is set for KindAPIKey.
	APIKey *APIKey
	// Claims are further identity claims the policy may read.
	Claims map[string]any
}

// APIKey describes the API key a caller used; never its secret.
type APIKey struct {
	ID     string
	Name   string
	Owner  string
	Scopes []string
	Tier   string
}

// Session describes the caller's browser session, nil without one.
type Session struct {
	// ID is the session's storage key (session.Record.Hash): safe to log
	// and to name the session in the admin API; never the cookie value.
	ID      string
	Created time.Time
	// LastSeen is the previous request of the session.
	LastSeen time.Time
	// Fingerprint compares the client with the one bound at login.
	Fingerprint FingerprintCheck
}

// FingerprintCheck is the outcome of comparing a session's bound client
// fingerprint with the current request's.
type FingerprintCheck struct {
	Bound   bool
	Match   bool
	Changed []string
	// BoundUserAgent and UserAgent are the browser family and major
	// version bound at login and seen now ("chrome/130"; "" when
	// unknown), so that a policy can tell a browser update from another
	// browser.
	BoundUserAgent string
	UserAgent      string
}
