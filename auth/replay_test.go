package auth

import (
	"slices"
	"testing"
	"time"
)

func TestOnceCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	c := newOnceCache(2)
	if !c.add("a", now.Add(time.Minute), now) || c.add("a", now.Add(time.Minute), now) {
		t.Fatal("add(a) twice: want true, then false")
	}
	if !c.add("b", now.Add(time.Second), now) {
		t.Fatal("add(b) refused")
	}
	// Full with live keys: refuse rather than forget.
	if c.add("c", now.Add(time.Minute), now) {
		t.Error("a full cache of live keys took another")
	}
	// b expired: swept to make room; a is still remembered.
	later := now.Add(2 * time.Second)
	if !c.add("c", later.Add(time.Minute), later) {
		t.Error("the expired key was not swept")
	}
	if c.add("a", later.Add(time.Minute), later) {
		t.Error("a live key was forgotten")
	}
	c.remove("a")
	if !c.add("a", later.Add(time.Minute), later) {
		t.Error("a removed key is still remembered")
	}
}

func TestSIDIndex(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	x := newSIDIndex(3)
	x.add("s1", "h1", now.Add(time.Hour), now)
	x.add("s1", "h2", now.Add(time.Second), now)
	x.add("s2", "h3", now.Add(time.Hour), now)
	x.add("s3", "h4", now.Add(time.Hour), now) // full: not indexed
	if _, known := x.take("s3", now); known {
		t.Error("a login past the bound was indexed")
	}
	later := now.Add(time.Minute)
	got, known := x.take("s1", later)
	if !known || !slices.Equal(got, []string{"h1"}) {
		t.Errorf("take(s1) = %v, %v; want [h1] (h2 expired), true", got, known)
	}
	if _, known := x.take("s1", later); known {
		t.Error("take(s1) twice")
	}
	x.add("s4", "h5", later.Add(time.Hour), later)
	if got, _ := x.take("s4", later); !slices.Equal(got, []string{"h5"}) {
		t.Errorf("take(s4) = %v after room was made", got)
	}

	// A full index sweeps expired sessions out of a sid that keeps live ones.
	y := newSIDIndex(2)
	y.add("s1", "h1", now.Add(time.Second), now)
	y.add("s1", "h2", now.Add(time.Hour), now)
	y.add("s2", "h3", later.Add(time.Hour), later)
	if got, _ := y.take("s1", later); !slices.Equal(got, []string{"h2"}) {
		t.Errorf("take(s1) after a sweep = %v, want [h2]", got)
	}
	if got, _ := y.take("s2", later); !slices.Equal(got, []string{"h3"}) {
		t.Errorf("take(s2) = %v, want [h3] (indexed after the sweep made room)", got)
	}
	if y.n != 0 || len(y.sids) != 0 {
		t.Errorf("after taking everything: n = %d, %d sids", y.n, len(y.sids))
	}
}

func TestRolesAndClaims(t *testing.T) {
	t.Parallel()
	claims := map[string]any{
		"sub": "alice", "roles": []any{"sales", "sales", "", 7, "support"},
		"https://example.com/roles": "admin",
		"realm_access":              map[string]any{"roles": []any{"crm-sales", "uma"}},
		"groups":                    []any{"emea"},
		"email":                     "alice@example.com", "email_verified": false,
		"preferred_username": "alice", "nonce": "n", "at_hash": "h",
	}
	for _, tt := range []struct {
		name  string
		roles RolesConfig
		want  []string
	}{
		{"plain", RolesConfig{Claim: "roles"}, []string{"sales", "support"}},
		{"namespaced name with dots", RolesConfig{Claim: "https://example.com/roles"}, []string{"admin"}},
		{"dotted path", RolesConfig{Claim: "realm_access.roles"}, []string{"crm-sales", "uma"}},
		{"mapped allow-list", RolesConfig{Claim: "realm_access.roles", Map: map[string]string{"crm-sales": "sales"}}, []string{"sales"}},
		{"missing", RolesConfig{Claim: "nope.roles"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rp := &RP{cfg: Config{Issuer: "https://idp.example", Roles: tt.roles}}
			rec := rp.record(&idClaims{Subject: "alice", SID: "s1"}, claims, nil)
			if !slices.Equal(rec.Roles, tt.want) {
				t.Errorf("roles = %q, want %q", rec.Roles, tt.want)
			}
			if rec.Email != "" {
				t.Errorf("email %q kept although email_verified is false", rec.Email)
			}
			if !slices.Equal(rec.Groups, []string{"emea"}) || rec.Claims["sid"] != "s1" || rec.Claims["preferred_username"] != "alice" {
				t.Errorf("groups %q, claims %v", rec.Groups, rec.Claims)
			}
			if _, ok := rec.Claims["nonce"]; ok {
				t.Error("protocol claims copied into the session")
			}
		})
	}
}
