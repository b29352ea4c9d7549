// Package auth owns who a browser user is: the gateway's OpenID Connect
// relying party. It logs users in with the authorization code flow (PKCE
// S256, state and nonce bound to a sealed pre-login cookie, RFC 9207 iss
// check, full ID token validation), starts their server-side session with
// a fresh id, keeps the session's tokens fresh, logs users out (CSRF-checked
// POST, then RP-Initiated Logout at the provider) and honours the
// provider's Back-Channel Logout. Identify maps a request's session to the
// scope.Subject the policy sees; Challenge answers requests without one.
//
// It does not store sessions (package session does: auth calls
// Manager.Start, Load, Refresh, End and the Revoke methods), and it does
// not verify bearer JWTs, API keys or run MFA step-up decisions; the
// gateway's identity stage calls Identify and Challenge and mounts Handler
// at the paths of Config.
//
// # Flow and what each step defends
//
// Login puts state (130 random bits), nonce (130 bits), the PKCE verifier,
// the return path and an expiry into one cookie per pending login, named
// LoginCookieName-<hash of state>, sealed with AES-256-GCM under a key
// derived from Config.Key (or the client secret) with the cookie name as
// additional data; several tabs may log in at once (at most 4 pending).
// The callback accepts an authorization response only for a state that
// names such a cookie (login CSRF), consumes it (the cookie is expired and
// the state remembered until it would have expired: a replayed callback
// fails), checks iss (mix-up), exchanges the code with the verifier (a
// code injected from another login fails at the provider), and verifies
// the ID token: signature with the provider's JWKS and only the
// configured algorithms, iss, aud, azp, exp/iat/nbf with Config.ClockSkew,
// nonce, auth_time against a requested max_age, and that it is not an
// access or logout token. Return paths pass SafeReturn twice, at login and
// at the callback.
//
// # Replicas
//
// Pre-login cookies carry their own state, so a login may start on one
// replica and finish on another if they share the configuration. The
// caches of consumed states, seen logout-token ids and the sid index are
// per process: a replayed callback that reaches another replica still
// fails at the provider (a code is single-use), and a back-channel logout
// whose sid this replica never saw revokes all the user's sessions
// (session.Manager.RevokeUser) instead of that one provider session's.
//
// # Provider outages
//
// Start keeps retrying discovery with back-off while the provider is down;
// meanwhile Login answers a 503 page and the back-channel endpoint 400.
// Sessions keep working: a token refresh that the provider cannot answer
// leaves the session as it is and is retried after 15 s, and only a
// refresh the provider refuses (invalid_grant, or tokens that do not
// verify) ends the session.
package auth
