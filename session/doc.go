// Package session owns server-side sessions for browser users: the session
// record, the cookie that names it, the encryption of records at rest under
// a key ring, the stores that keep them (memory for one replica, Redis for
// more), revocation across replicas, and the lock that lets one request
// refresh a session's OIDC tokens while the others wait.
//
// It does not speak OIDC (the auth package logs users in and calls
// Manager.Start, and supplies the token refresh function to
// Manager.Refresh), and it does not compute client fingerprints: Record
// keeps the fingerprint bound at login as an opaque map that a later stage
// fills and compares.
//
// # Cookies
//
// The cookie is named __Host-crmgate by default; any configured name must
// keep the __Host- prefix, so browsers accept it only with Secure, Path=/
// and no Domain, and a sibling subdomain cannot plant or overwrite it
// (RFC 6265bis §4.1.3.2). It is HttpOnly and SameSite=Lax. Its value is
// base64url of a version byte, the id of the ring key that issued it, the
// 32 random bytes of the session id (crypto/rand) and an HMAC-SHA256 tag
// over those, so a forged, truncated or tampered cookie is refused before
// any store lookup. Only a cookie with exactly the configured name counts
// (crmgate, __Secure-crmgate, __host-crmgate or __Host-crmgate.0 are
// ignored); two cookies with that name make the request ambiguous and it
// has no session (ErrAmbiguousCookie).
//
// # Storage and encryption at rest
//
// A record is stored under an HMAC of its id, so a store dump does not
// reveal live cookie values, and sealed with AES-256-GCM under the ring's
// active key; the storage key and the record version are the additional
// data, so a sealed record cannot be moved to another session or rolled
// back to an earlier version unnoticed. Each configured key (at least 32
// bytes, first = active) is expanded with HKDF-SHA256 (RFC 5869) into
// independent encryption, cookie-MAC and storage-key subkeys.
//
// Key rotation: put a new key first and keep the old one after it. New
// sessions and every write of an existing session use the new key; sessions
// whose cookie was issued under the old key keep working, because their
// cookie is still verified (and their storage key derived) with the key
// that issued it. Removing a key ends every session whose cookie that key
// issued: keep a retired key in the ring for at least the absolute timeout
// (default 12h), after which all sessions it issued have expired anyway.
//
// With random 96-bit nonces a GCM key must not seal more than 2^32 records
// (NIST SP 800-38D §8.3); every Save seals once, so rotate keys long before
// that (at a sustained 100 saves per second that is more than a year).
//
// # Stores and replicas
//
// MemoryStore is the default and is for one replica only: a second replica
// would not see its sessions or revocations. RedisStore keeps sessions in
// Redis (single node, Sentinel or Cluster through redis.UniversalClient)
// with a TTL, a per-user index for revoking all sessions of a user, an
// optimistic version check against lost updates, and a distributed lock.
// It keeps no local copy of records, so a revocation is effective on every
// replica as soon as Redis has applied it. Revocations are also published
// on a pub/sub channel; wire RedisOptions.OnRevoke to Manager.Revoked (and
// to whatever else holds sessions open, such as WebSocket connections) so
// every replica drops what it holds of a revoked session within
// milliseconds.
//
// The Manager reads the store on every Load; the store alone decides
// whether a session exists. To keep Load cheap it remembers the records it
// recently opened, keyed by storage key, version and the sealed bytes'
// nonce and tag, and skips decrypting and decoding an entry it has already
// authenticated (see decodedCache). A deleted, expired, rewritten or
// resealed entry no longer matches, so a remembered record is never used
// past its stored version. At most Config.CacheEntries records are kept
// (default 10000), evicted by CLOCK; Manager.CacheStats counts hits,
// misses and evictions.
//
// # Failure
//
// Every store error other than "not found" wraps ErrUnavailable: the caller
// must fail closed (treat the request as unauthenticated or answer 503),
// never fall back to trusting the cookie alone. The Redis client reconnects
// by itself; the next request after Redis is back succeeds.
package session
