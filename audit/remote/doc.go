// Package remote owns the audit sinks that ship events off the machine to a
// SIEM: RFC 5424 syslog over TLS (RFC 5425) and batched HTTP POSTs whose
// body shape (NDJSON, a JSON array, or a template for Splunk HEC, Elastic
// bulk, Loki and the like) is configuration, not code per vendor.
//
// Both sinks take batches of events, each one JSON object, and deliver a
// batch in order and completely or return an error; they do not queue,
// spool, retry or reorder. That is the caller's job (the audit pipeline keeps
// the batch and retries with backoff). Because neither syslog over TCP nor an
// HTTP collector acknowledges single events, a batch that failed part way may
// have been partly received: a retry then delivers those events again.
// Receivers dedupe on the event's unique metadata.uid.
//
// The syslog framing and the body templates are written here rather than
// taken from a library: the maintained Go syslog clients either lack RFC 5425
// octet counting over TLS with the error semantics above or pull in logging
// frameworks, and the substitution syntax is deliberately tiny (a handful of
// placeholders expanded in one pass, never inside event content) so that it
// can be reviewed and fuzzed whole.
package remote
