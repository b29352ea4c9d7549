// Package policy owns the embedded OPA engine that decides every route:
// reading and compiling a folder of Rego v1 policies and data (a Source,
// compiled into an immutable Set), running the set's own *_test.rego tests
// before it may take effect, one prepared query per entrypoint, the typed
// Input built once per request from the request scope, the strictly
// decoded Decision, and hot reload that swaps the active set atomically
// and keeps the last good one when a new one fails to compile or to pass
// its tests.
//
// It never fails open: an undefined entrypoint, an evaluation error, a
// timeout, a decision that does not match the schema and an input that
// cannot represent the request faithfully are all denies, whose Reason
// says which (ReasonUndefined and friends) and whose Revision names the
// set that was active.
//
// A set comes from a folder or from a signed OPA bundle (ReadBundle),
// verified by OPA's bundle reader before anything in it is compiled.
// Shadow mode (Shadow) decides every input with a candidate set as well,
// off the request path, and reports each disagreement without enforcing
// it. Set.Test measures coverage and Set.Explain says which rules made a
// decision, for the policy command; package decisionlog writes decisions
// in OPA's decision log format.
//
// Remote asks an OPA server (`opa run --server`) for each decision
// instead, through its Data API: the same Input and the same strict
// decoding, and a server that cannot be asked, answers late or answers
// anything but a valid decision is a deny (ReasonUnavailable and the
// other reasons).
//
// It does not enforce decisions: the proxy does (403, step-up, rate
// limits, redaction are other stages).
//
// The contract a policy is written against, with examples, is
// docs/policy.md.
package policy
