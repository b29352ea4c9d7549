// Package crm is a sample legacy CRM: an in-memory HTTP/JSON server with
// contacts, deals, invoices and admin users that crmgate's demo, end-to-end
// tests and benchmarks put behind the gateway.
//
// It owns its seeded demo data (deterministic from [Config.Seed]), the CRM's
// routes, a streaming bulk export, and a few diagnostic endpoints that echo
// what actually reached the upstream (/api/whoami, /api/echo, /api/ws) or
// misbehave on purpose (/api/slow).
//
// It deliberately does not authenticate, authorize, rate-limit or redact
// anything: like the legacy applications crmgate fronts, it trusts the
// identity header the gateway sets and answers as "anonymous" when the header
// is missing. Every protection belongs to the gateway in front of it, which
// is what makes the difference visible in the demo. Never expose it directly.
package crm
