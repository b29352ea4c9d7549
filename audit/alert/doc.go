// Package alert owns the alert rules of the audit trail: their
// configuration, the shipped default rules, and the engine that counts
// audit events per subject or per client address in sliding windows and
// says when an alert fires.
//
// It does not read or write audit events and does not deliver alerts: the
// gateway maps each audit event to an Observation, calls Engine.Observe,
// and sends every Alert it gets back to the alert sinks (webhook, syslog)
// as an audit event of its own (Alert.Event gives its OCSF form). It does
// not import the audit package; the event types and request outcomes it
// matches are plain strings, so a rule may name an event type that a
// later version of the gateway adds.
//
// # Rules
//
// A rule matches observations by event type (and, for http.request, by
// outcome, reason and status), groups them by a key (the subject, the
// client address, or the subject and else the address), and fires when the
// number of matching observations, or the sum of their Records, reaches the
// threshold within the window. After firing, a rule stays quiet for the
// same key for the cooldown, while it keeps counting.
//
// # Windows
//
// Each window is split into Buckets sub-windows of window/Buckets, aligned
// on the Unix epoch; a key keeps one counter per sub-window. At an
// observation's time t, the count covers the sub-window holding t and the
// Buckets-1 before it. So an observation older than the window (t-window or
// earlier) never counts, one younger than window - window/Buckets always
// counts, and one in between counts or not depending on where t falls in
// its sub-window: an alert may fire up to window/Buckets late, never
// early, and never on observations spread over more than the window.
//
// # Memory
//
// Each rule tracks at most Config.MaxKeys subjects and as many client
// addresses, in shards each with its own lock. A key whose window is empty
// and whose cooldown is over holds no state and is dropped first. When a
// shard is full of live keys, the key with the smallest count among the
// EvictSample least recently seen is dropped (the older on a tie). A
// client spraying new addresses therefore cannot grow memory, and cannot
// cheaply reset another key's count: the keys it creates count 1 and are
// dropped before any key that counts more. To push out a key that has
// counted n, it must first bring EvictSample keys at the cold end of the
// shard to n or more. IPv6 addresses count per /64, so rotating addresses
// within one network does not help either. See docs/alerts.md.
package alert
