package auth

import (
	"slices"
	"strings"
	"time"

	"github.com/crmgate/crmgate/session"
)

// keptClaims are the further identity claims copied into the session for
// the policy; tokens and protocol claims (nonce, at_hash, ...) are not.
var keptClaims = []string{"preferred_username", "name", "given_name", "family_name", "locale", "zoneinfo"}

// record builds the session record of a verified login. info, when not
// nil, holds userinfo claims whose sub was checked to be the ID token's.
func (rp *RP) record(c *idClaims, all, info map[string]any) *session.Record {
	rec := &session.Record{
		UserID:   c.Subject,
		ACR:      c.ACR,
		AMR:      slices.Clone(c.AMR),
		AuthTime: c.AuthTime.value(),
		Claims:   map[string]any{"iss": rp.cfg.Issuer},
	}
	if c.SID != "" {
		rec.Claims["sid"] = c.SID
	}
	// The userinfo response completes the ID token and wins where both
	// speak: it is the provider's current view of the user.
	merged := all
	if info != nil {
		merged = make(map[string]any, len(all)+len(info))
		for k, v := range all {
			merged[k] = v
		}
		for k, v := range info {
			merged[k] = v
		}
	}
	rec.Email = verifiedEmail(merged)
	rec.Roles = rp.roles(merged)
	rec.Groups = stringList(lookupClaim(merged, "groups"))
	for _, k := range keptClaims {
		if v, ok := merged[k].(string); ok && v != "" {
			rec.Claims[k] = v
		}
	}
	if !rec.AuthTime.IsZero() {
		rec.AuthTime = rec.AuthTime.Truncate(time.Second)
	}
	return rec
}

// verifiedEmail returns the email claim unless the provider says it is not
// verified: an unverified address is whatever the user typed, and a policy
// keyed on email would grant that user someone else's rights.
func verifiedEmail(claims map[string]any) string {
	email, _ := claims["email"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		if !v {
			return ""
		}
	case string:
		if v != "true" {
			return ""
		}
	}
	return email
}

// roles reads the configured roles claim and maps it.
func (rp *RP) roles(claims map[string]any) []string {
	raw := stringList(lookupClaim(claims, rp.cfg.Roles.Claim))
	if len(rp.cfg.Roles.Map) == 0 {
		return raw
	}
	var out []string
	for _, v := range raw {
		if m, ok := rp.cfg.Roles.Map[v]; ok && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// lookupClaim returns the claim named name, or, when there is none, the
// value at the dotted path (realm_access.roles). Names with dots, such as
// namespaced claims (https://example.com/roles), are found whole first.
func lookupClaim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[part]; !ok {
			return nil
		}
	}
	return cur
}

// stringList reads a string or an array of strings; other elements are
// skipped, and so are empty strings and duplicates.
func stringList(v any) []string {
	var out []string
	add := func(s string) {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	switch v := v.(type) {
	case string:
		add(v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				add(s)
			}
		}
	}
	return out
}
