# METADATA
# title: CRM authorization
# description: |
#   Decides every route of the CRM behind crmgate. Who may do what is in
#   data.yaml (data.crmgate.access); these rules apply it. The input and
#   the decision are documented in docs/policy.md.
#
#   The rules sit on every request, so they read the table directly and
#   keep to few rules per decision: see "Writing fast policies" in
#   docs/policy.md.
package crmgate.authz

import data.crmgate.access

# Deny unless a rule below allows.
default decision := {"allow": false, "reason": "no rule allows this request"}

# The first clause of the chain that applies decides.
decision := session_revoked if {
	hijacked
} else := public if {
	input.route.id in access.public_routes
} else := session_rebind if {
	rebind
} else := {"allow": false, "reason": "sign-in required"} if {
	input.subject.kind == "anonymous"
} else := api_key_decision if {
	input.subject.kind == "api_key"
} else := user_decision if {
	input.subject.kind in {"user", "service"}
}

# The route table entry of the request's route and method. HEAD is granted
# with GET: it reads the same resource.
route := access.routes[input.route.id]

method := "GET" if {
	input.request.method == "HEAD"
} else := input.request.method

entry := route.methods[method]

# --- Session hijacking --------------------------------------------------

fingerprint := input.session.fingerprint

# A session used by another client than the one that signed in: the
# fingerprint bound at login does not match, and what changed is a
# component a legitimate user does not change mid-session (or the gateway
# could not say what changed). A browser update explains a new TLS
# fingerprint and User-Agent: it is re-bound, not revoked.
hijacked if {
	fingerprint.bound
	not fingerprint.match
	hijack_change(fingerprint.changed)
	not browser_update
}

# Any other change (the network alone: people move between networks; a
# browser update) is re-bound: the user signs in again with a second
# factor, and the new session is bound to the client that did.
rebind if {
	fingerprint.bound
	not fingerprint.match
}

# The same browser family in a newer major version, at most
# access.browser_update_max_versions newer.
browser_update if {
	[family, bound] := browser(fingerprint.user_agent.bound)
	[now_family, current] := browser(fingerprint.user_agent.current)
	family == now_family
	current > bound
	current - bound <= access.browser_update_max_versions
}

# A normalised User-Agent ("chrome/130") as [family, major version].
browser(ua) := [family, to_number(major)] if {
	[family, major] := split(ua, "/")
	regex.match(`^[0-9]{1,6}$`, major)
}

hijack_change(changed) if count(changed) == 0

hijack_change(changed) if {
	some c in changed
	c in access.hijack_components
}

session_rebind := {
	"allow": false,
	"reason": concat("", ["the client changed (", concat(", ", fingerprint.changed), "): sign in again to continue"]),
	"session_action": "step_up",
	"step_up": {"acr": access.mfa.acr, "max_age_s": access.mfa.max_age_s},
	"audit": {"durability": "async", "tags": ["session-rebind"]},
}

session_revoked := {
	"allow": false,
	"reason": "session fingerprint changed: another client holds this session",
	"session_action": "revoke",
	"audit": {"durability": "strict", "tags": ["session-hijack"]},
}

# --- Public routes ------------------------------------------------------

public := {
	"allow": true,
	"reason": "public route",
	"rate_limit": {"tier": public_tier},
}

public_tier := input.subject.api_key.tier if {
	input.subject.kind == "api_key"
} else := object.get(access.tiers, input.subject.kind, access.tiers.anonymous)

# --- Sensitive actions and MFA freshness --------------------------------

sensitive if input.request.method in access.sensitive.methods

# The path with a trailing "/" starts with a prefix: the path is the
# prefix's folder or below it.
sensitive if strings.any_prefix_match(concat("", [input.request.path, "/"]), access.sensitive.path_prefixes)

# A second factor was used within the allowed age. The request's time comes
# from the input, so that a decision depends on its input only.
mfa_fresh if {
	access.mfa.amr in input.subject.amr
	now_s := time.parse_rfc3339_ns(input.request.time) / 1000000000
	now_s - input.subject.auth_time <= access.mfa.max_age_s
}

step_up := {
	"allow": false,
	"reason": concat(" ", [input.request.method, input.route.id, "needs a recent second factor"]),
	"step_up": {"acr": access.mfa.acr, "max_age_s": access.mfa.max_age_s},
	"audit": object.get(route, "audit", access.default_audit),
}

# --- Users and service clients: roles -----------------------------------

# The first grant of the route and method that names one of the subject's
# roles.
grant := [g | some g in entry.grants; g.role in input.subject.roles][0]

user_decision := {"allow": false, "reason": reason} if {
	not grant
	reason := concat(" ", ["no role of the subject may", input.request.method, input.route.id])
} else := step_up if {
	sensitive
	input.subject.kind == "user"
	not mfa_fresh
} else := {"allow": false, "reason": reason} if {
	sensitive
	input.subject.kind == "service"
	reason := concat(" ", [input.request.method, input.route.id, "needs a second factor, which a service client cannot give"])
} else := {
	"allow": true,
	"reason": concat(" ", [grant.role, "may", input.request.method, input.route.id]),
	"redact": object.get(access.views, object.get(grant, "view", ""), []),
	# Row-level ownership: only the caller's own records.
	"filter": [{"path": p, "keep_where": {"owner": input.subject.id}} | p := grant.own],
	"rate_limit": {"tier": object.get(route, "tier", access.tiers[input.subject.kind])},
	"audit": object.get(route, "audit", access.default_audit),
}

# --- API keys: scopes and tiers -----------------------------------------

api_key_decision := {"allow": false, "reason": "API key tier is not allowed"} if {
	not input.subject.api_key.tier in access.api_key_tiers
} else := {"allow": false, "reason": reason} if {
	sensitive
	reason := concat(" ", [input.request.method, input.route.id, "needs a second factor, which an API key cannot give"])
} else := {"allow": false, "reason": reason} if {
	not entry.api_key
	reason := concat(" ", ["API keys may not", input.request.method, input.route.id])
} else := {"allow": false, "reason": reason} if {
	not entry.api_key.scope in input.subject.api_key.scopes
	reason := concat(" ", [input.request.method, input.route.id, "needs scope", entry.api_key.scope])
} else := {
	"allow": true,
	"reason": concat(" ", ["API key scope", entry.api_key.scope, "allows", input.request.method, input.route.id]),
	"redact": object.get(access.views, object.get(entry.api_key, "view", ""), []),
	"rate_limit": {"tier": object.get(route, "tier", input.subject.api_key.tier)},
	"audit": object.get(route, "audit", access.default_audit),
}
