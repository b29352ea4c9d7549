package main

import (
	"fmt"
	"math"
	"net/url"
	"path"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// demoTime is the request time of every input. It is fixed so that MFA
// freshness (auth_time against request.time) decides the same way in both
// engines and in every run: the shipped policy reads the time from the
// input, never from the clock.
var demoTime = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// caller is one of the demo's callers: who they are and, for people
// signed in with a browser, their session.
type caller struct {
	subject policy.SubjectInput
	// session is nil for callers without a browser session.
	session *policy.SessionInput
}

// demoCallers are the demo's callers (the same people as the policy
// package's tests): sales alice, finance bob, admin carol with and without
// a fresh second factor, support dave, a service client, API keys with
// scopes and tiers, and nobody.
func demoCallers() map[string]caller {
	fresh := demoTime.Add(-time.Minute).Unix()
	stale := demoTime.Add(-time.Hour).Unix()
	bound := func(match bool, changed ...string) *policy.SessionInput {
		return &policy.SessionInput{AgeS: 3600, IdleS: 60, Fingerprint: policy.FingerprintInput{
			Bound: true, Match: match, Changed: append([]string{}, changed...),
		}}
	}
	user := func(id, role string, amr []string, authTime int64, s *policy.SessionInput) caller {
		return caller{subject: policy.SubjectInput{
			Kind: "user", ID: id, Email: id + "@example.com", Roles: []string{role}, Groups: []string{},
			ACR: "mfa", AMR: amr, AuthTime: authTime, Claims: map[string]any{"preferred_username": id},
		}, session: s}
	}
	apiKey := func(id, name, tier string, scopes ...string) caller {
		return caller{subject: policy.SubjectInput{
			Kind: "api_key", ID: id, Roles: []string{}, Groups: []string{}, AMR: []string{}, Claims: map[string]any{},
			APIKey: &policy.APIKeyInput{ID: id, Name: name, Owner: "integrations@example.com", Scopes: scopes, Tier: tier},
		}}
	}
	pwd, otp := []string{"pwd"}, []string{"pwd", "otp"}
	return map[string]caller{
		"anonymous": {subject: policy.SubjectInput{
			Kind: "anonymous", Roles: []string{}, Groups: []string{}, AMR: []string{}, Claims: map[string]any{},
		}},
		"alice":          user("alice", "sales", pwd, stale, bound(true)),
		"alice_moved":    user("alice", "sales", pwd, stale, bound(false, "ip_prefix")),
		"alice_hijacked": user("alice", "sales", pwd, stale, bound(false, "ja4", "user_agent")),
		"bob":            user("bob", "finance", pwd, stale, bound(true)),
		"carol":          user("carol", "admin", pwd, stale, bound(true)),
		"carol_mfa":      user("carol", "admin", otp, fresh, bound(true)),
		"dave":           user("dave", "support", pwd, stale, bound(true)),
		"service": {subject: policy.SubjectInput{
			Kind: "service", ID: "sync", Roles: []string{"finance"}, Groups: []string{}, AMR: []string{}, Claims: map[string]any{},
		}},
		"key_read":     apiKey("k1", "integration-read", "standard", "contacts:read", "deals:read"),
		"key_write":    apiKey("k2", "integration-write", "standard", "contacts:read", "contacts:write"),
		"key_bad_tier": apiKey("k3", "integration-unlimited", "unlimited", "contacts:read"),
	}
}

// call is one kind of request in the mix, and how many of every
// len(demoCalls)-weighted batch it makes up.
type call struct {
	who, method, route, target string
	weight                     int
}

// demoCalls is a realistic mix of the demo's traffic (the mix of the policy
// package's BenchmarkDecide, plus the rarer branches of the policy):
// mostly signed-in users reading lists and records (allowed, filtered,
// redacted), some writes, API-key integrations, public diagnostics,
// step-ups, a hijacked session and denies.
var demoCalls = []call{
	{"alice", "GET", "contacts.list", "/api/contacts?page=2&per_page=50", 8},
	{"alice", "GET", "contacts.item", "/api/contacts/42", 6},
	{"alice", "PUT", "contacts.item", "/api/contacts/42", 2},
	{"alice", "GET", "deals.list", "/api/deals", 4},
	{"alice", "GET", "invoices.list", "/api/invoices", 1},
	{"alice_moved", "GET", "contacts.list", "/api/contacts", 1},
	{"alice_hijacked", "GET", "contacts.list", "/api/contacts", 1},
	{"bob", "GET", "invoices.list", "/api/invoices", 5},
	{"bob", "GET", "contacts.list", "/api/contacts?q=acme", 3},
	{"dave", "GET", "contacts.list", "/api/contacts", 4},
	{"dave", "GET", "contacts.item", "/api/contacts/7", 3},
	{"dave", "HEAD", "contacts.item", "/api/contacts/7", 1},
	{"dave", "PUT", "contacts.item", "/api/contacts/7", 1},
	{"carol", "GET", "contacts.list", "/api/contacts", 2},
	{"carol", "DELETE", "contacts.item", "/api/contacts/9", 1},
	{"carol_mfa", "DELETE", "contacts.item", "/api/contacts/9", 1},
	{"carol_mfa", "GET", "admin.users", "/api/admin/users", 1},
	{"carol_mfa", "GET", "export.contacts", "/api/export/contacts", 1},
	{"carol", "GET", "crm.home", "/", 2},
	{"key_read", "GET", "contacts.list", "/api/contacts", 5},
	{"key_read", "GET", "deals.list", "/api/deals", 3},
	{"key_write", "POST", "contacts.list", "/api/contacts", 2},
	{"key_read", "PUT", "contacts.item", "/api/contacts/1", 1},
	{"key_bad_tier", "GET", "contacts.list", "/api/contacts", 1},
	{"service", "GET", "invoices.list", "/api/invoices", 1},
	{"service", "DELETE", "contacts.item", "/api/contacts/3", 1},
	{"anonymous", "GET", "whoami", "/api/whoami", 2},
	{"anonymous", "GET", "contacts.list", "/api/contacts", 2},
}

// demoHeaders are the request headers every input carries: what a browser
// sends that the default allow-list (policy.DefaultHeaders) lets through.
// The cookie it also sends is a credential and never reaches the input.
var demoHeaders = map[string]string{
	"accept":          "application/json",
	"accept-language": "en-GB,en;q=0.9",
	"user-agent":      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
}

// sample is one distinct input of the mix.
type sample struct {
	// label names the call, for error messages: "alice GET contacts.list".
	label string
	in    *policy.Input
}

// mix is the inputs every measurement cycles through.
type mix struct {
	// distinct holds one input per call, in the order of the calls.
	distinct []sample
	// order lists indexes into distinct, each call repeated by its weight
	// and interleaved so that consecutive decisions differ.
	order []int
}

// newMix builds the inputs of calls for callers.
//
// The inputs are literal policy.Input values, written as the gateway's
// InputBuilder would fill them, with every list and map present (empty
// rather than nil) so that their JSON form and their OPA form are the same
// document. A literal input is converted to OPA's form on each embedded
// decision, which is the embedded counterpart of encoding it as JSON for
// the server: both sides start from the same Go value.
func newMix(calls []call, callers map[string]caller) (mix, error) {
	var m mix
	for i, c := range calls {
		who, ok := callers[c.who]
		if !ok {
			return mix{}, fmt.Errorf("call %d: no caller %q", i, c.who)
		}
		if c.weight < 1 {
			return mix{}, fmt.Errorf("call %d (%s %s %s): weight %d, want at least 1", i, c.who, c.method, c.route, c.weight)
		}
		u, err := url.Parse(c.target)
		if err != nil {
			return mix{}, fmt.Errorf("call %d: %w", i, err)
		}
		query, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return mix{}, fmt.Errorf("call %d: %w", i, err)
		}
		params := map[string]string{}
		if c.route == "contacts.item" {
			params["id"] = path.Base(u.Path)
		}
		headers := make(map[string]string, len(demoHeaders))
		for k, v := range demoHeaders {
			headers[k] = v
		}
		in := &policy.Input{
			Request: policy.RequestInput{
				ID:       fmt.Sprintf("req-%d", i+1),
				Method:   c.method,
				Path:     u.Path,
				Query:    query,
				Host:     "crm.example.com",
				ClientIP: "203.0.113.7",
				Time:     demoTime,
				Headers:  headers,
			},
			Route:   policy.RouteInput{ID: c.route, Params: params, Tags: []string{"pii"}},
			Subject: who.subject,
			Session: who.session,
		}
		m.distinct = append(m.distinct, sample{label: c.who + " " + c.method + " " + c.route, in: in})
		for range c.weight {
			m.order = append(m.order, i)
		}
	}
	if len(m.distinct) == 0 {
		return mix{}, fmt.Errorf("no calls")
	}
	perm := interleave(len(m.order))
	order := make([]int, len(m.order))
	for i, j := range perm {
		order[i] = m.order[j]
	}
	m.order = order
	return m, nil
}

// interleave returns a fixed permutation of 0..n-1 that steps through the
// list by a stride coprime with n, close to n/φ (golden-ratio stepping),
// so that the repeats of one call are spread out instead of consecutive:
// two neighbours of the result are at least min(stride, n-stride) apart
// in the list.
func interleave(n int) []int {
	stride := max(1, int(math.Round(float64(n)*0.618)))
	for n > 1 && gcd(stride, n) != 1 {
		stride++
	}
	out := make([]int, n)
	for i := range out {
		out[i] = (i * stride) % n
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
