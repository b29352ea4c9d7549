# Tests of authz.rego against the access table in data.yaml. Run them with
# `go test ./policy` (which `make test` runs) or `opa test policies/`.
package crmgate.authz_test

import data.crmgate.authz

# --- Inputs -------------------------------------------------------------

# The request's time: 2026-01-02T15:04:05Z.
now_s := 1767366245

request(method, path, route_id, params) := {
	"request": {
		"id": "test",
		"method": method,
		"path": path,
		"query": {},
		"host": "crm.example.com",
		"client_ip": "203.0.113.7",
		"time": "2026-01-02T15:04:05Z",
		"headers": {"user-agent": "test"},
	},
	"route": {"id": route_id, "params": params, "tags": []},
	"subject": {"kind": "anonymous", "id": "", "email": "", "roles": [], "groups": [], "acr": "", "amr": [], "auth_time": 0, "api_key": null, "claims": {}},
	"session": null,
}

# A user who signed in an hour ago with a password only.
user(id, roles) := {
	"kind": "user",
	"id": id,
	"email": concat("", [id, "@example.com"]),
	"roles": roles,
	"groups": [],
	"acr": "pwd",
	"amr": ["pwd"],
	"auth_time": now_s - 3600,
	"api_key": null,
	"claims": {},
}

# A user who used a second factor age_s seconds ago.
mfa_user(id, roles, age_s) := object.union(user(id, roles), {"acr": "mfa", "amr": ["pwd", "otp"], "auth_time": now_s - age_s})

api_key(scopes, tier) := {
	"kind": "api_key",
	"id": "key-1",
	"email": "",
	"roles": [],
	"groups": [],
	"acr": "",
	"amr": [],
	"auth_time": 0,
	"api_key": {"id": "key-1", "name": "integration", "owner": "carol", "scopes": scopes, "tier": tier},
	"claims": {},
}

service(id, roles) := object.union(user(id, roles), {"kind": "service", "amr": [], "auth_time": 0})

session(bound, match, changed) := browser_session(bound, match, changed, "chrome/130", "chrome/130")

browser_session(bound, match, changed, was, now) := {"age_s": 60, "idle_s": 5, "fingerprint": {
	"bound": bound, "match": match, "changed": changed,
	"user_agent": {"bound": was, "current": now},
}}

by(req, subject) := object.union(req, {"subject": subject})

list_contacts := request("GET", "/api/contacts", "contacts.list", {})

contact(method) := request(method, "/api/contacts/42", "contacts.item", {"id": "42"})

create_contact := request("POST", "/api/contacts", "contacts.list", {})

deals := request("GET", "/api/deals", "deals.list", {})

invoices := request("GET", "/api/invoices", "invoices.list", {})

export := request("GET", "/api/export/contacts", "export.contacts", {})

admin_users := request("GET", "/api/admin/users", "admin.users", {})

home := request("GET", "/", "crm.home", {})

whoami := request("GET", "/api/whoami", "whoami", {})

decide(x) := d if {
	d := authz.decision with input as x
}

remove_ssn := {"path": "$..ssn", "action": "remove"}

mask_card := {"path": "$..credit_card", "action": "mask", "keep_last": 4}

mfa_step_up := {"acr": "mfa", "max_age_s": 300}

# --- Default deny and anonymous callers ---------------------------------

test_anonymous_denied_on_crm_routes if {
	every req in [list_contacts, contact("GET"), deals, invoices, export, admin_users, home] {
		d := decide(req)
		not d.allow
		d.reason == "sign-in required"
	}
}

test_anonymous_allowed_on_public_routes if {
	every id in ["whoami", "echo", "slow", "ws"] {
		d := decide(request("GET", "/api/x", id, {}))
		d.allow
		d.rate_limit == {"tier": "anonymous"}
	}
}

test_public_route_for_user_has_user_tier if {
	d := decide(by(whoami, user("alice", ["sales"])))
	d.allow
	d.rate_limit == {"tier": "standard"}
}

test_public_route_for_api_key_has_the_key_tier if {
	d := decide(by(whoami, api_key([], "partner")))
	d.allow
	d.rate_limit == {"tier": "partner"}
}

test_unknown_route_denied if {
	d := decide(by(request("GET", "/api/other", "other", {}), user("carol", ["admin"])))
	not d.allow
}

test_unknown_subject_kind_denied if {
	d := decide(by(list_contacts, object.union(user("x", ["admin"]), {"kind": "robot"})))
	d == {"allow": false, "reason": "no rule allows this request"}
}

test_user_without_roles_denied if {
	d := decide(by(list_contacts, user("eve", [])))
	not d.allow
	contains(d.reason, "no role")
}

test_unknown_role_denied if {
	d := decide(by(list_contacts, user("eve", ["intern"])))
	not d.allow
}

# --- sales --------------------------------------------------------------

test_sales_lists_only_own_contacts_without_ssn if {
	d := decide(by(list_contacts, user("alice", ["sales"])))
	d.allow
	d.filter == [{"path": "$.items", "keep_where": {"owner": "alice"}}]
	d.redact == [remove_ssn, mask_card]
	d.rate_limit == {"tier": "standard"}
	d.audit == {"durability": "async", "tags": ["pii"]}
}

test_sales_reads_own_contact if {
	d := decide(by(contact("GET"), user("alice", ["sales"])))
	d.allow
	d.filter == [{"path": "$", "keep_where": {"owner": "alice"}}]
	d.redact == [remove_ssn, mask_card]
}

test_sales_head_is_granted_with_get if {
	d := decide(by(contact("HEAD"), user("alice", ["sales"])))
	d.allow
	d.filter == [{"path": "$", "keep_where": {"owner": "alice"}}]
}

test_sales_edits_only_own_contact if {
	d := decide(by(contact("PUT"), user("alice", ["sales"])))
	d.allow
	d.filter == [{"path": "$", "keep_where": {"owner": "alice"}}]
	d.audit == {"durability": "async", "tags": ["pii"]}
}

test_sales_creates_contacts if {
	d := decide(by(create_contact, user("alice", ["sales"])))
	d.allow
	d.redact == [remove_ssn, mask_card]
}

test_sales_cannot_delete if {
	d := decide(by(contact("DELETE"), mfa_user("alice", ["sales"], 10)))
	not d.allow
	not d.step_up
}

test_sales_lists_only_own_deals if {
	d := decide(by(deals, user("alice", ["sales"])))
	d.allow
	d.filter == [{"path": "$.items", "keep_where": {"owner": "alice"}}]
}

test_sales_denied_elsewhere if {
	every req in [invoices, export, admin_users, home] {
		not decide(by(req, mfa_user("alice", ["sales"], 10))).allow
	}
}

test_sales_patch_denied if {
	not decide(by(contact("PATCH"), user("alice", ["sales"]))).allow
}

# --- finance ------------------------------------------------------------

test_finance_reads_contacts_without_ssn if {
	every req in [list_contacts, contact("GET")] {
		d := decide(by(req, user("bob", ["finance"])))
		d.allow
		d.redact == [remove_ssn]
		d.filter == []
	}
}

test_finance_reads_invoices if {
	d := decide(by(invoices, user("bob", ["finance"])))
	d.allow
	d.redact == []
	d.audit.tags == ["finance"]
}

test_finance_cannot_write_or_read_deals if {
	every req in [contact("PUT"), create_contact, contact("DELETE"), deals, export, admin_users] {
		not decide(by(req, mfa_user("bob", ["finance"], 10))).allow
	}
}

# --- support ------------------------------------------------------------

test_support_reads_contacts_masked if {
	every req in [list_contacts, contact("GET")] {
		d := decide(by(req, user("dave", ["support"])))
		d.allow
		{"path": "$..email", "action": "mask"} in d.redact
		{"path": "$..phone", "action": "mask", "keep_last": 4} in d.redact
		remove_ssn in d.redact
		mask_card in d.redact
		d.filter == []
	}
}

test_support_cannot_write if {
	every req in [contact("PUT"), create_contact, contact("DELETE")] {
		not decide(by(req, mfa_user("dave", ["support"], 10))).allow
	}
}

test_support_denied_elsewhere if {
	every req in [deals, invoices, export, admin_users, home] {
		not decide(by(req, user("dave", ["support"]))).allow
	}
}

# --- admin --------------------------------------------------------------

test_admin_reads_everything_unredacted if {
	every req in [list_contacts, contact("GET"), deals, invoices, home] {
		d := decide(by(req, user("carol", ["admin"])))
		d.allow
		d.redact == []
		d.filter == []
	}
}

test_admin_edits_without_mfa if {
	every req in [contact("PUT"), create_contact] {
		decide(by(req, user("carol", ["admin"]))).allow
	}
}

test_admin_sensitive_needs_mfa if {
	every req in [contact("DELETE"), export, admin_users] {
		d := decide(by(req, user("carol", ["admin"])))
		not d.allow
		d.step_up == mfa_step_up
	}
}

test_admin_sensitive_with_fresh_mfa if {
	every req in [contact("DELETE"), export, admin_users] {
		decide(by(req, mfa_user("carol", ["admin"], 60))).allow
	}
}

test_admin_mfa_at_the_limit if {
	decide(by(contact("DELETE"), mfa_user("carol", ["admin"], 300))).allow
}

test_admin_stale_mfa_steps_up if {
	d := decide(by(contact("DELETE"), mfa_user("carol", ["admin"], 301)))
	not d.allow
	d.step_up == mfa_step_up
}

test_admin_mfa_without_auth_time_steps_up if {
	subject := object.union(mfa_user("carol", ["admin"], 10), {"auth_time": 0})
	d := decide(by(contact("DELETE"), subject))
	d.step_up == mfa_step_up
}

test_sensitive_paths_by_prefix if {
	every req in [
		request("GET", "/api/admin", "admin.users", {}),
		request("GET", "/api/admin/users/7", "admin.users", {}),
	] {
		decide(by(req, user("carol", ["admin"]))).step_up == mfa_step_up
	}
	# A path that merely starts with the same letters is not under it.
	not authz.sensitive with input as request("GET", "/api/administrators", "x", {})
}

test_export_is_strictly_audited_bulk if {
	d := decide(by(export, mfa_user("carol", ["admin"], 10)))
	d.rate_limit == {"tier": "bulk"}
	d.audit == {"durability": "strict", "tags": ["pii", "bulk-export"]}
}

test_routes_without_audit_entry_use_the_default if {
	d := decide(by(deals, user("alice", ["sales"])))
	d.audit == {"durability": "async", "tags": []}
}

# --- several roles ------------------------------------------------------

test_first_granting_role_decides if {
	# finance's grant comes before sales': all contacts, ssn removed.
	d := decide(by(list_contacts, user("frank", ["sales", "finance"])))
	d.allow
	d.filter == []
	d.redact == [remove_ssn]
	contains(d.reason, "finance may")
}

test_later_role_grants_what_first_does_not if {
	# finance grants no PUT; sales does, for own contacts.
	d := decide(by(contact("PUT"), user("frank", ["finance", "sales"])))
	d.allow
	d.filter == [{"path": "$", "keep_where": {"owner": "frank"}}]
}

# --- service clients ----------------------------------------------------

test_service_uses_roles if {
	decide(by(invoices, service("billing-sync", ["finance"]))).allow
}

test_service_cannot_step_up if {
	d := decide(by(contact("DELETE"), service("cleanup", ["admin"])))
	not d.allow
	not d.step_up
	contains(d.reason, "service client")
}

# --- API keys -----------------------------------------------------------

test_api_key_reads_with_scope if {
	d := decide(by(list_contacts, api_key(["contacts:read", "deals:read"], "standard")))
	d.allow
	d.redact == [remove_ssn, mask_card]
	d.rate_limit == {"tier": "standard"}
	decide(by(deals, api_key(["contacts:read", "deals:read"], "partner"))).rate_limit == {"tier": "partner"}
}

test_api_key_without_scope_denied if {
	d := decide(by(contact("PUT"), api_key(["contacts:read", "deals:read"], "standard")))
	not d.allow
	d.reason == "PUT contacts.item needs scope contacts:write"
	not decide(by(invoices, api_key(["contacts:read"], "standard"))).allow
}

test_api_key_writes_with_scope if {
	every req in [contact("PUT"), create_contact] {
		decide(by(req, api_key(["contacts:read", "contacts:write"], "standard"))).allow
	}
}

test_api_key_never_sensitive if {
	all_scopes := ["contacts:read", "contacts:write", "deals:read", "invoices:read"]
	every req in [contact("DELETE"), export, admin_users] {
		d := decide(by(req, api_key(all_scopes, "standard")))
		not d.allow
		not d.step_up
	}
}

test_api_key_closed_routes if {
	d := decide(by(home, api_key(["contacts:read"], "standard")))
	not d.allow
	d.reason == "API keys may not GET crm.home"
}

test_api_key_unknown_tier_denied if {
	d := decide(by(list_contacts, api_key(["contacts:read"], "unlimited")))
	not d.allow
	contains(d.reason, "tier")
}

test_api_key_kind_without_key_denied if {
	subject := object.union(api_key(["contacts:read"], "standard"), {"api_key": null})
	not decide(by(list_contacts, subject)).allow
}

# --- session fingerprint ------------------------------------------------

test_hijacked_session_revoked if {
	every changed in [["ja4"], ["user_agent"], ["ja4", "ip_prefix"], []] {
		x := object.union(by(list_contacts, user("carol", ["admin"])), {"session": session(true, false, changed)})
		d := decide(x)
		not d.allow
		d.session_action == "revoke"
		d.audit == {"durability": "strict", "tags": ["session-hijack"]}
	}
}

test_hijack_revoked_even_on_public_routes if {
	x := object.union(by(whoami, user("carol", ["admin"])), {"session": session(true, false, ["ja4"])})
	decide(x).session_action == "revoke"
}

test_network_change_alone_steps_up if {
	x := object.union(by(list_contacts, user("carol", ["admin"])), {"session": session(true, false, ["ip_prefix"])})
	d := decide(x)
	not d.allow
	d.session_action == "step_up"
	d.step_up == {"acr": "mfa", "max_age_s": 300}
	d.reason == "the client changed (ip_prefix): sign in again to continue"
}

test_network_change_on_public_route_allowed if {
	x := object.union(by(whoami, user("carol", ["admin"])), {"session": session(true, false, ["ip_prefix"])})
	d := decide(x)
	d.allow
	not d.session_action
}

test_browser_update_steps_up if {
	every changed in [["ja4", "user_agent"], ["user_agent"], ["ja4", "user_agent", "ip_prefix"]] {
		ses := browser_session(true, false, changed, "chrome/130", "chrome/131")
		d := decide(object.union(by(list_contacts, user("carol", ["admin"])), {"session": ses}))
		not d.allow
		d.session_action == "step_up"
	}
}

test_other_browser_or_downgrade_revoked if {
	every ua in [
		["chrome/130", "firefox/131"], # another family
		["chrome/130", "chrome/129"], # older
		["chrome/130", "chrome/140"], # too far ahead
		["chrome/130", "chrome/x"], # not a version
		["chrome/130", "other"], # not a browser
		["chrome/130", ""], # no User-Agent
		["", "chrome/131"], # none at sign-in
	] {
		ses := browser_session(true, false, ["ja4", "user_agent"], ua[0], ua[1])
		d := decide(object.union(by(list_contacts, user("carol", ["admin"])), {"session": ses}))
		d.session_action == "revoke"
	}
}

test_matching_or_unbound_session_allowed if {
	every s in [session(true, true, []), session(false, false, [])] {
		x := object.union(by(list_contacts, user("carol", ["admin"])), {"session": s})
		decide(x).allow
	}
}
