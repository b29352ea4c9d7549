// Package idp is a development OpenID Provider for crmgate's demo and
// end-to-end tests. It is NOT for production: users, clients, sessions,
// tokens and signing keys live in memory, and it trusts its configuration
// completely.
//
// The protocol endpoints (discovery, authorization, token, userinfo,
// introspection, revocation, end session, JWKS) come from the certified
// github.com/zitadel/oidc/v3/pkg/op library; this package supplies its
// in-memory [github.com/zitadel/oidc/v3/pkg/op.Storage], the login pages (password, then a TOTP second
// factor when the client asks for acr_values=mfa or the user always needs
// it), the single sign-on session cookie, signing-key rotation, the RFC 9207
// iss authorization-response parameter and OpenID Connect Back-Channel
// Logout 1.0.
//
// It owns none of the relying-party side: the gateway's OIDC login, session
// and step-up logic live elsewhere and talk to this provider only over HTTPS,
// exactly as they would talk to a company IdP.
package idp
