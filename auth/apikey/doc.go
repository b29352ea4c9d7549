// Package apikey owns API keys for the CRM's API clients: the key format
// (Generate, Parse), the stored records, the stores that keep them (a JSON
// file for one gateway and the CLI, Redis for replicas), the Manager that
// creates, verifies, rotates, revokes and deletes keys, and the extraction
// of a presented key from a request (Source, Extract, Source.Strip).
//
// It does not decide what a key may do (the policy reads Record.Scopes
// through the request scope's Subject), does not rate-limit (Record.Tier
// names a tier for package ratelimit), and does not answer requests: the
// proxy's identity stage calls Extract and Manager.Verify and renders one
// and the same 401 for every failure, and the `crmgate apikey` command and
// the admin API call the Manager's other methods. Both live elsewhere.
//
// # Keys
//
// A key reads crm_<id>_<secret><check>: a 12-character id (60 random
// bits) that names the record and may be logged, a 52-character secret
// (256 bits from crypto/rand) and a 7-character CRC-32 checksum, all in
// lower-case base32 (a-z, 2-7). The checksum lets Parse refuse a typo, and
// secret scanners recognise a real key, without a lookup. Parse is strict:
// it refuses anything longer than MaxLen before looking at it and trims or
// normalises nothing, so " crm_…", "crm_…\n" and "CRM_…" are malformed.
//
// The plaintext is returned once, by Manager.Create or Rotate, and never
// stored or logged. A record keeps HMAC-SHA256 of the id and secret under a
// pepper that lives in the gateway's configuration, not with the records:
// a stolen key file or Redis dump yields nothing to test guesses against,
// and a 256-bit secret needs no slow password hash. Record, Key and
// Manager log nothing but ids and attributes (LogValue, String).
//
// # Verification
//
// Verify parses the key, reads the record by id (one map lookup in the file
// store's snapshot, one round trip to Redis) and compares the HMAC of the
// presented secret in constant time (crypto/subtle) with the record's
// hash and, during a rotation overlap, the previous one. An unknown id
// costs the same HMAC and comparisons against a dummy hash, so response
// times do not tell which ids exist. The failure reasons (ErrUnknown,
// ErrMismatch, ErrSuperseded, ErrExpired, ErrDisabled) are distinct for the
// audit log; the client must be answered identically for all of them.
// A successful Verify updates the record's LastUsed in the background, at
// most once a minute per key.
//
// # Rotation and revocation
//
// Rotate gives a key a new secret under the same id; the old secret keeps
// working for an overlap of at most MaxOverlap (7 days) so clients can be
// redeployed, or stops at once with overlap 0. Revoke disables the key and
// keeps the record for audit; Delete removes it. With RedisStore every
// replica sees a change on its next request. With FileStore a running
// gateway sees a change the CLI made within a second: it watches the file
// and checks its metadata at most every 250 ms on use.
//
// # Extraction
//
// Extract looks for a key in the configured sources (a named header, an
// Authorization scheme, HTTP Basic) and refuses ambiguity: a source header
// twice, in any spelling of its name (X-API-Key, x-api-key and X_API_Key
// are one name, as proxies that rewrite '-' to '_' would have it), two
// sources at once, or Basic naming two keys. Strip removes every spelling
// of the credential before the request is forwarded.
package apikey
