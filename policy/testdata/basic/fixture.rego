# A policy set for the engine's tests: each route id exercises one outcome.
package fixture

route := input.route.id

decision := {"allow": true, "reason": "ok", "rate_limit": {"tier": data.fixture.tier}} if route == "ok"

decision := {"allow": false, "reason": "denied by policy"} if route == "deny"

decision := {
	"allow": true,
	"reason": "everything",
	"redact": [
		{"path": "$.items[*].ssn", "action": "remove"},
		{"path": "$..credit_card", "action": "mask", "keep_last": 4},
	],
	"filter": [{"path": "$.items", "keep_where": {"owner": input.subject.id}}],
	"rate_limit": {"tier": "standard"},
	"upstream_headers": {"x-crm-team": "sales"},
	"session_action": "none",
	"audit": {"durability": "strict", "tags": ["pii-read"]},
} if route == "full"

decision := {"allow": false, "reason": "fresh mfa", "step_up": {"acr": "mfa", "max_age_s": 300}} if route == "step_up"

# The input as the policy sees it, to check the engine's conversion.
decision := {"allow": true, "reason": json.marshal(input)} if route == "echo"

# time.now_ns() is the request's time.
decision := {"allow": true, "reason": sprintf("%d", [time.now_ns()])} if route == "now"

# Schema mismatches.
decision := {"allow": "yes"} if route == "allow_string"

decision := {"reason": "no allow"} if route == "allow_missing"

decision := true if route == "not_object"

decision := {"allow": true, "session_action": "logout"} if route == "bad_session_action"

decision := {"allow": true, "redact": [{"path": "ssn", "action": "remove"}]} if route == "bad_redact_path"

decision := {"allow": true, "redact": [{"path": "$.ssn", "action": "blur"}]} if route == "bad_redact_action"

decision := {"allow": true, "redact": [{"path": "$.ssn", "action": "remove", "keep_last": 4}]} if route == "bad_keep_last"

decision := {"allow": true, "redacts": []} if route == "unknown_field"

decision := {"allow": true, "step_up": {"acr": "mfa"}} if route == "step_up_on_allow"

decision := {"allow": true, "upstream_headers": {"X-Bad": "a\nb"}} if route == "bad_header"

# A built-in error.
decision := {"allow": to_number(input.route.params.n) > 0} if route == "builtin_error"

# Two definitions disagree: a conflict error.
decision := {"allow": true} if route == "conflict"

decision := {"allow": false} if route == "conflict"

# Billions of steps: only the deadline stops it.
decision := {"allow": count(slow) > 0} if route == "slow"

slow contains [i, j, k] if {
	some i in numbers.range(1, 2000)
	some j in numbers.range(1, 2000)
	some k in numbers.range(1, 2000)
	i + j + k == -1
}

# A second entrypoint.
other := {"allow": true, "reason": "other entrypoint"}
