// Package fingerprint owns the client fingerprint that a browser session is
// bound to: how it is computed from the TLS ClientHello and the request, and
// how the fingerprint seen on a request is compared with the one bound at
// login. It does not store fingerprints (session.Record keeps them, as the
// map[string]string a Fingerprint converts to), and it does not decide what
// a change means: the policy sees which components changed
// (input.session.fingerprint.changed) and decides whether to allow, step up
// or revoke.
//
// # Components
//
// A Fingerprint maps component names to values:
//
//   - ja4: the JA4 TLS client fingerprint (FoxIO JA4 specification) of the
//     connection, taken from the ClientHello the listener captured, or from a
//     configured header set by a TLS-terminating proxy in front of the
//     gateway. The bound value is StableJA4: JA4 with the extensions that
//     only a resuming client sends (pre_shared_key, early_data) left out, so
//     that a browser resuming its TLS session is not reported as a new
//     client. JA4 returns the value exactly as the specification defines it.
//   - user_agent: the browser family and major version ("chrome/130",
//     "firefox/128", "safari/17", "edge/130", "curl/8", "other").
//   - ip_prefix: the client network, the client address truncated to /24
//     for IPv4 and /48 for IPv6 by default; an IPv4-mapped IPv6 address
//     counts as IPv4.
//   - accept_language: up to three primary language subtags of
//     Accept-Language ("de,en"). Not compared by default: it changes when a
//     user changes the browser's language settings, and it adds little that
//     the User-Agent does not already tell an attacker to copy.
//
// A component that cannot be computed is absent, never guessed: no
// ClientHello (the gateway is behind a TLS-terminating load balancer and no
// trusted JA4 header is configured), no User-Agent header, no valid client
// address.
//
// # Comparison
//
// Compare looks only at the components bound at login. A component absent
// from the bound fingerprint is not compared (the login request could not
// provide it, or it was not configured then). A component bound but absent
// now counts as changed: otherwise an attacker would pass the check by
// withholding the component (sending no User-Agent, say).
//
// # Threat model
//
// Binding stops a stolen session cookie from being replayed from another
// client: a different TLS stack (curl, a Go or Python script, an
// intercepting proxy, another browser), a different browser version or
// family, or another network. A JA4 change or a move to another network is
// a strong signal that the cookie left the browser it was issued to.
//
// It cannot stop an attacker who acts inside the victim's own browser
// (cross-site scripting, a malicious extension, malware driving the browser)
// or who relays requests through the victim's machine: those requests carry
// the victim's own fingerprint. Nor does it stop a careful attacker who
// learns the victim's fingerprint and reproduces it: User-Agent and
// Accept-Language are plain headers, a client can imitate a browser's
// ClientHello, and an attacker on the victim's network shares its prefix.
// Binding raises the cost of cookie theft; it does not replace short
// sessions, HttpOnly cookies and step-up authentication for sensitive
// actions.
//
// Legitimate changes happen too: a laptop moves between networks, a
// dual-stack client alternates between IPv4 and IPv6, a browser updates its
// major version during a long session. The policy should treat ip_prefix
// and user_agent changes as risk signals (step up) rather than as proof of
// theft.
//
// # Cost
//
// JA4 hashes and sorts the ClientHello's lists; it runs once per connection
// (the caller keeps the value with the connection and passes it to
// ComputeWithJA4). The per-request work, User-Agent and Accept-Language
// normalisation, the IP prefix and Compare, costs well under two
// microseconds (see the package benchmarks).
package fingerprint
