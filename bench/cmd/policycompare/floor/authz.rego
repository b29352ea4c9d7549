# METADATA
# title: Transport floor
# description: |
#   A one-rule stand-in for the shipped policy (same package and
#   entrypoint), for `policycompare -policies bench/cmd/policycompare/floor`:
#   with next to nothing to evaluate, the comparison measures what asking
#   a server costs over calling the engine in process, the ceiling of the
#   embedded engine's advantage. Never enforced by crmgate.
package crmgate.authz

decision := {"allow": input.subject.kind != "anonymous", "reason": "floor"}
