// Package audit owns the audit trail: the event schema (OCSF 1.x classes
// HTTP Activity, Authentication, Account Change and API Activity, with
// crmgate's own fields under unmapped), the asynchronous pipeline that
// takes one event per request plus the security events and delivers them
// to every sink, the disk spool that holds what a sink cannot take yet,
// the file sink with its SHA-256 hash chain and Ed25519-signed
// checkpoints, the standard output sink, and the verifier of the file
// sink's segments.
//
// The request path never waits for a sink: Emit encodes the event on the
// caller's goroutine and puts it in a bounded in-memory queue per sink.
// When a queue is full or its sink fails, that sink's events go to its
// spool (append-only segment files) and are replayed in order once the
// sink takes them again. When the spool's disk budget is spent the
// configured on_full policy applies: refuse (Emit returns ErrRefused and
// Accepting reports false, so the gateway answers 503) or drop (events are
// counted as lost and an audit.loss event is recorded when delivery
// resumes). EmitDurable returns once the event is on disk and fsynced,
// sharing each fsync among all the callers waiting for one.
//
// It does not decide what to record beyond the event it is given (the
// proxy, auth and admin packages build events), and it does not implement
// the syslog and HTTP sinks: they are Sink values passed to New. The
// tamper-evident format is written by hand here because no maintained
// library writes an append-only hash-chained JSON-lines log; it uses only
// crypto/sha256, crypto/ed25519 and crypto/hmac.
//
// docs/audit.md describes the events, the OCSF mapping, the pipeline's
// failure behaviour, the chain format and how to verify it.
package audit
