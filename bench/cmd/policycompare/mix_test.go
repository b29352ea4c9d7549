package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/policy"
)

func TestInterleave(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 14, 49, 61, 66, 70} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			got := interleave(n)
			sorted := slices.Sorted(slices.Values(got))
			want := make([]int, n)
			for i := range want {
				want[i] = i
			}
			if diff := cmp.Diff(sorted, want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("interleave(%d) is not a permutation (-got +want):\n%s", n, diff)
			}
		})
	}
}

func TestNewMix(t *testing.T) {
	m, err := newMix(demoCalls, demoCallers())
	if err != nil {
		t.Fatalf("newMix(demoCalls) = %v", err)
	}
	if got, want := len(m.distinct), len(demoCalls); got != want {
		t.Errorf("len(distinct) = %d, want %d", got, want)
	}
	counts := make([]int, len(m.distinct))
	for _, i := range m.order {
		counts[i]++
	}
	for i, c := range demoCalls {
		if counts[i] != c.weight {
			t.Errorf("%s appears %d times in the order, want its weight %d", m.distinct[i].label, counts[i], c.weight)
		}
	}
	for k := 1; k < len(m.order); k++ {
		if m.order[k] == m.order[k-1] {
			t.Errorf("order[%d] = order[%d] = %d: consecutive decisions should differ", k-1, k, m.order[k])
		}
	}

	tests := []struct {
		name  string
		calls []call
	}{
		{"unknown caller", []call{{"mallory", "GET", "contacts.list", "/api/contacts", 1}}},
		{"zero weight", []call{{"alice", "GET", "contacts.list", "/api/contacts", 0}}},
		{"bad query", []call{{"alice", "GET", "contacts.list", "/api/contacts?a=%zz", 1}}},
		{"no calls", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newMix(tt.calls, demoCallers()); err == nil {
				t.Errorf("newMix(%v) = nil error, want one", tt.calls)
			}
		})
	}
}

// The mix reaches the policy's branches, every input gets a decision from
// the policy, and the JSON form the server receives decides as the input
// itself does: the two sides are asked the same question. The OPA server
// itself is compared with the engine at run time, before measuring.
func TestMixDecisions(t *testing.T) {
	ctx := context.Background()
	eng, err := loadEngine(ctx, filepath.Join("..", "..", "..", "policies"))
	if err != nil {
		t.Fatalf("loadEngine(policies) = %v", err)
	}
	m, err := newMix(demoCalls, demoCallers())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range m.distinct {
		d := eng.Decide(ctx, s.in, "")
		if d.Failed() {
			t.Fatalf("Decide(%s) failed: %s: %s", s.label, d.Reason, d.Error)
		}
		got[s.label] = d.Allow

		b, err := json.Marshal(opaRequest{Input: s.in})
		if err != nil {
			t.Fatalf("json.Marshal(%s) = %v", s.label, err)
		}
		var decoded struct {
			Input *policy.Input `json:"input"`
		}
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatalf("json.Unmarshal(%s) = %v", s.label, err)
		}
		fromJSON := eng.Decide(ctx, decoded.Input, "")
		if fromJSON.Allow != d.Allow || fromJSON.Reason != d.Reason {
			t.Errorf("Decide(%s) from its JSON form = %t %q, want %t %q", s.label, fromJSON.Allow, fromJSON.Reason, d.Allow, d.Reason)
		}
	}
	// One input per branch of the policy's decision chain.
	want := map[string]bool{
		"alice GET contacts.list":          true,  // a role's grant
		"alice_moved GET contacts.list":    false, // a new network: sign in again (step-up), not a revocation
		"alice_hijacked GET contacts.list": false, // session revoked
		"carol DELETE contacts.item":       false, // step-up: no fresh MFA
		"carol_mfa DELETE contacts.item":   true,  // fresh MFA
		"dave HEAD contacts.item":          true,  // HEAD granted with GET
		"key_read GET contacts.list":       true,  // API key scope
		"key_read PUT contacts.item":       false, // missing scope
		"key_bad_tier GET contacts.list":   false, // tier not allowed
		"service DELETE contacts.item":     false, // a service cannot step up
		"anonymous GET whoami":             true,  // public route
		"anonymous GET contacts.list":      false, // sign-in required
	}
	for label, allow := range want {
		if a, ok := got[label]; !ok || a != allow {
			t.Errorf("Decide(%s).Allow = %t (in mix: %t), want %t", label, a, ok, allow)
		}
	}
}

// The transport floor's one rule decides every input of the mix.
func TestFloorDecides(t *testing.T) {
	ctx := context.Background()
	eng, err := loadEngine(ctx, "floor")
	if err != nil {
		t.Fatalf("loadEngine(floor) = %v", err)
	}
	m, err := newMix(demoCalls, demoCallers())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.distinct {
		if d := eng.Decide(ctx, s.in, ""); d.Failed() {
			t.Errorf("Decide(%s) failed: %s: %s", s.label, d.Reason, d.Error)
		}
	}
}
