// Package bearer owns the verification of OAuth 2.0 bearer access tokens
// (RFC 6750) that are JWTs (RFC 9068), as machine clients of the
// company's identity providers send them to the CRM's API: Extract reads
// the token from the Authorization header, and Verifier.Verify checks it
// against the configured issuers and maps it to the scope.Subject of
// kind service that the policy sees.
//
// It does not own browser sign-in or sessions (package auth), API keys,
// opaque tokens (no introspection, RFC 7662), proof-of-possession tokens
// (DPoP, mTLS-bound: refused), or the HTTP answer: the gateway's identity
// stage maps ErrUnavailable to 503 and every other error to 401 with
// WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 §3.1).
//
// # What Verify checks, in order
//
//  1. Length: at most Config.MaxTokenBytes, before any parsing
//     (ErrTooLarge).
//  2. Shape: a compact JWS, three base64url parts (RFC 7515 §7.1);
//     JWE, the JSON serializations, whitespace and padding are refused,
//     and so are header or claims nested deeper than 32 levels
//     (ErrMalformed).
//  3. Header: alg is one of the asymmetric algorithms (none in any
//     spelling and HS* are refused here: ErrInvalidSignature); crit, b64
//     and a nested-JWT cty are refused (ErrMalformed). jku, x5u, x5c and
//     jwk are ignored: no URL a token names is fetched and no key it
//     carries is trusted (RFC 8725 §3.10).
//  4. Issuer: the unverified iss picks the configured issuer exactly;
//     any other iss is refused without a network call
//     (ErrUnknownIssuer).
//  5. That issuer's rules before any signature work: alg is one of its
//     Algorithms (ErrInvalidSignature); typ is its RequireType, or, when
//     none is required, absent, JWT or at+jwt (ErrNotAccessToken); its
//     keys are known (ErrUnavailable).
//  6. Signature, by go-oidc with the issuer's key set and configured
//     algorithms: the key named by kid, or, without a kid, each key of
//     the issuer; only a key whose type fits alg (RSA for RS*/PS*, the
//     matching curve for ES*, Ed25519 for EdDSA) and, when the key states
//     an alg, that alg (ErrInvalidSignature).
//  7. Claims: exp is required and must be ahead of now minus Leeway
//     (missing: ErrMalformed; past: ErrExpired); nbf and iat, when
//     present, must not be after now plus Leeway (ErrNotYetValid); aud,
//     a string or an array, must contain Audience (ErrInvalidAudience).
//  8. Token kind (ErrNotAccessToken): an ID token is not an access
//     token. Refused are tokens with a nonce, at_hash or c_hash claim
//     (ID tokens, OIDC Core §2), a typ claim of ID, Refresh, Offline or
//     Logout (Keycloak's token kinds), an events claim (logout tokens and
//     other security events, RFC 8417) and a cnf claim (sender-constrained
//     tokens, RFC 8705 and RFC 9449, whose proof a bearer request does
//     not carry). With RequireType set, typ JWT or id_token fails step 5.
//     An ID token that has none of these marks still fails unless its aud
//     is the API's Audience: configure an identifier of the API there,
//     never a client's id.
//  9. Subject: SubjectClaim must be a non-empty string of at most 255
//     bytes (ErrMalformed).
//
// # Keys
//
// Each issuer's JSON Web Key Set comes from its jwks_url, or from the
// jwks_uri of its discovery document (whose issuer must be the configured
// one). Only public signature keys are kept; RSA keys under 2048 bits,
// symmetric, private and encryption keys are skipped. Start fetches the
// keys in the background and fetches them again every 10 minutes, so
// that a key the provider withdraws stops being accepted; a failed fetch
// keeps the keys there are. A token whose kid no key has causes one more
// fetch (the provider may have rotated), at most once per
// RefreshCooldown: tokens with unknown kids that arrive while a fetch is
// in flight wait for it, and those within the cooldown after it are
// refused at once (ErrInvalidSignature). A flood of made-up kids thus
// costs the provider one request per cooldown. Tokens without a kid
// never cause a fetch.
//
// A token whose signature verified is remembered (by its SHA-256, at most
// 4096 tokens, with the key set it verified with), so that a client
// sending the same token again costs no signature check: on the next
// request only the checks of step 7 onwards run again. The memory of a
// token holds only while the key set it verified with is the issuer's
// current one; each fetch (every 10 minutes, or for an unknown kid)
// replaces it, so a withdrawn key stops being accepted for every token at
// the same time as without this memory.
//
// # Provider outages
//
// New does no I/O and Start does not wait for the provider. Until an
// issuer's keys have been fetched once its tokens are refused with
// ErrUnavailable (503: the client should retry), and Ready reports false;
// such requests bring the next attempt forward, but never closer than a
// second to the last. Once fetched, keys are kept through outages; a
// token with an unknown kid is refused with ErrUnavailable too when the
// latest fetch of the key set failed (the key may be a new one), and with
// ErrInvalidSignature when it succeeded.
package bearer
