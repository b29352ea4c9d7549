// Package decisionlog owns the policy decision log: one event per decision
// in OPA's decision log event format (what OPA's decision log plugin
// uploads, so OPA tooling can read it), written as JSON lines to a file,
// standard output or standard error, with sensitive fields of the input
// and the result erased or replaced by JSON pointer (RFC 6901), as OPA's
// mask policy does.
//
// Logging never slows a request: Log encodes and masks on the caller's
// goroutine, without changing the caller's input, and queues the line; a
// single writer goroutine (Run) writes it. When the queue is full the
// event is dropped and counted in crmgate_policy_decision_log_events_total.
//
// It does not decide (package policy does), it is not the audit log (the
// durable, tamper-evident record of every request, which never drops), and
// it does not upload events to a decision log service or run OPA's
// drop and mask policies written in Rego: masks are configured pointers.
//
// The format, the default masks and how to read the log are in
// docs/policy.md, "Decision log".
package decisionlog
