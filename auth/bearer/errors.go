package bearer

import "errors"

// Errors of Extract and Verify; every failure wraps exactly one of these,
// so callers branch with errors.Is. ErrUnavailable is the provider's
// problem (answer 503 and let the client retry); every other one is the
// token's (answer 401 with WWW-Authenticate: Bearer error="invalid_token",
// RFC 6750 §3.1), and ErrNoToken means no bearer token was offered at all.
var (
	// ErrNoToken: the request has no Authorization header, or one with
	// another scheme (Basic, an API key scheme, ...).
	ErrNoToken = errors.New("bearer: no bearer token")
	// ErrMalformed: not a well-formed bearer header or compact JWS with
	// the claims an access token needs (JWE, JSON serialization, bad
	// base64 or JSON, crit headers, claims nested too deep, a missing or
	// ill-typed exp, iss or subject claim).
	ErrMalformed = errors.New("bearer: malformed token")
	// ErrTooLarge: longer than Config.MaxTokenBytes; nothing was parsed.
	ErrTooLarge = errors.New("bearer: token too large")
	// ErrUnknownIssuer: iss names no configured issuer. No key was
	// fetched for it.
	ErrUnknownIssuer = errors.New("bearer: unknown issuer")
	// ErrInvalidSignature: the algorithm is not one the issuer is
	// configured for (none and HMAC never are), no key of the issuer's
	// key set fits the token's kid and algorithm, or the signature does
	// not verify.
	ErrInvalidSignature = errors.New("bearer: invalid signature")
	// ErrExpired: exp is in the past, beyond the leeway.
	ErrExpired = errors.New("bearer: token expired")
	// ErrNotYetValid: nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("bearer: token not yet valid")
	// ErrInvalidAudience: aud does not contain the issuer's configured
	// audience.
	ErrInvalidAudience = errors.New("bearer: token for another audience")
	// ErrNotAccessToken: a validly signed token of another kind (an ID
	// token, a logout token, a refresh token) or typed other than
	// required, or a sender-constrained token presented as a bearer one.
	ErrNotAccessToken = errors.New("bearer: not an access token")
	// ErrUnavailable: the issuer's keys are not known yet, or a key-set
	// fetch the token needed failed. The token may well be valid.
	ErrUnavailable = errors.New("bearer: issuer keys unavailable")
)
