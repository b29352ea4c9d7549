package crm

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStaticLists(t *testing.T) {
	s := newTestServer(t, Config{Contacts: 100, Seed: 4})
	h := s.Handler()
	tests := []struct {
		name       string
		target     string
		wantStatus int
		wantTotal  int
		wantLen    int
	}{
		{"deals default", "/api/deals", 200, 150, 50},
		{"deals last page", "/api/deals?page=3&per_page=60", 200, 150, 30},
		{"deals past the end", "/api/deals?page=99", 200, 150, 0},
		{"deals bad page", "/api/deals?page=x", 400, 0, 0},
		{"invoices default", "/api/invoices", 200, 100, 50},
		{"invoices all", "/api/invoices?per_page=1000", 200, 100, 100},
		{"invoices bad per_page", "/api/invoices?per_page=-5", 400, 0, 0},
		{"admin users", "/api/admin/users", 200, 4, 4},
		{"admin users paged", "/api/admin/users?per_page=3&page=2", 200, 4, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: tt.target}.do(t, h)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s status = %d, want %d; body %s", tt.target, rec.Code, tt.wantStatus, rec.Body)
			}
			if rec.Code != http.StatusOK {
				return
			}
			got := decode[listBody[map[string]any]](t, rec)
			if got.Total != tt.wantTotal || len(got.Items) != tt.wantLen || got.Items == nil {
				t.Errorf("GET %s total, len(items) = %d, %d, want %d, %d", tt.target, got.Total, len(got.Items), tt.wantTotal, tt.wantLen)
			}
		})
	}

	t.Run("deals reference contacts and their owners", func(t *testing.T) {
		for _, d := range s.deals {
			c, ok := s.contacts.get(d.ContactID)
			if !ok || c.Owner != d.Owner {
				t.Fatalf("deal %d: contact %d owner %q (found %v), want deal owner %q", d.ID, d.ContactID, c.Owner, ok, d.Owner)
			}
		}
	})
	t.Run("admin users", func(t *testing.T) {
		rec := request{method: "GET", target: "/api/admin/users"}.do(t, h)
		var got []string
		for _, u := range decode[listBody[AdminUser]](t, rec).Items {
			got = append(got, u.Username)
		}
		if diff := cmp.Diff(got, []string{"alice", "bob", "carol", "dave"}); diff != "" {
			t.Errorf("usernames mismatch (-got +want):\n%s", diff)
		}
	})
}
