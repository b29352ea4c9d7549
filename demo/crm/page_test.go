package crm

import (
	"net/http"
	"strings"
	"testing"
)

func TestHomePage(t *testing.T) {
	s := newTestServer(t, Config{Contacts: 30, Seed: 2})
	h := s.Handler()
	first, _ := s.contacts.list("", 0, 30)

	// A stored contact whose fields try to break out of the table must be
	// escaped (stored XSS is a classic in legacy CRMs; the page must at
	// least not add one of its own).
	xss := `{"name":"<script>alert(1)</script>","email":"x@x.example","owner":"alice","notes":"</td><img src=x onerror=alert(2)>"}`
	if rec := (request{method: "PUT", target: "/api/contacts/1", body: xss}).do(t, h); rec.Code != http.StatusOK {
		t.Fatalf("PUT status = %d", rec.Code)
	}

	tests := []struct {
		name       string
		header     http.Header
		wantHas    []string
		wantHasNot []string
	}{
		{
			name:   "signed in",
			header: http.Header{"X-Crm-User": {"dave"}, "X-Crm-Roles": {"admin,sales"}},
			wantHas: []string{"<title>Acme CRM</title>", "Signed in as <strong>dave</strong> (admin,sales)",
				"Showing 20 of 30 contacts", first[1].Name, first[1].SSN, first[1].CreditCard, first[19].Email,
				"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;/td&gt;&lt;img src=x onerror=alert(2)&gt;"},
			wantHasNot: []string{first[20].Email, "<script", "<img", "http://", "https://"},
		},
		{
			name:    "anonymous",
			wantHas: []string{"Signed in as <strong>anonymous</strong></div>"},
		},
		{
			name:       "identity is escaped",
			header:     http.Header{"X-Crm-User": {"<b>eve</b>"}},
			wantHas:    []string{"Signed in as <strong>&lt;b&gt;eve&lt;/b&gt;</strong>"},
			wantHasNot: []string{"<b>eve"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: "/", header: tt.header}.do(t, h)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET / status = %d, want 200", rec.Code)
			}
			body := rec.Body.String()
			for _, w := range tt.wantHas {
				if !strings.Contains(body, w) {
					t.Errorf("GET / lacks %q", w)
				}
			}
			for _, w := range tt.wantHasNot {
				if strings.Contains(body, w) {
					t.Errorf("GET / contains %q", w)
				}
			}
		})
	}
}
