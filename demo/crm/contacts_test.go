package crm

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestListContactsPagination(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 120}).Handler()
	tests := []struct {
		name        string
		target      string
		wantStatus  int
		wantPage    int
		wantPerPage int
		wantIDs     []int // first and last id on the page; nil for an empty page
	}{
		{"defaults", "/api/contacts", 200, 1, 50, []int{1, 50}},
		{"second page", "/api/contacts?page=2", 200, 2, 50, []int{51, 100}},
		{"short last page", "/api/contacts?page=3", 200, 3, 50, []int{101, 120}},
		{"past the end", "/api/contacts?page=4", 200, 4, 50, nil},
		{"absurd page", "/api/contacts?page=9223372036854775807", 200, 9223372036854775807, 50, nil},
		{"per_page 1", "/api/contacts?per_page=1&page=7", 200, 7, 1, []int{7, 7}},
		{"per_page max", "/api/contacts?per_page=500", 200, 1, 500, []int{1, 120}},
		{"per_page clamped", "/api/contacts?per_page=501", 200, 1, 500, []int{1, 120}},
		{"page zero", "/api/contacts?page=0", 400, 0, 0, nil},
		{"negative page", "/api/contacts?page=-1", 400, 0, 0, nil},
		{"page not a number", "/api/contacts?page=two", 400, 0, 0, nil},
		{"per_page zero", "/api/contacts?per_page=0", 400, 0, 0, nil},
		{"per_page overflow", "/api/contacts?per_page=99999999999999999999", 400, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: tt.target}.do(t, h)
			if rec.Code != tt.wantStatus {
				t.Fatalf("GET %s status = %d, want %d; body %s", tt.target, rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			got := decode[listBody[Contact]](t, rec)
			if got.Total != 120 || got.Page != tt.wantPage || got.PerPage != tt.wantPerPage {
				t.Errorf("GET %s total, page, per_page = %d, %d, %d, want 120, %d, %d", tt.target, got.Total, got.Page, got.PerPage, tt.wantPage, tt.wantPerPage)
			}
			if got.Items == nil {
				t.Fatalf("GET %s items = null, want an array", tt.target)
			}
			var ids []int
			if n := len(got.Items); n > 0 {
				ids = []int{got.Items[0].ID, got.Items[n-1].ID}
			}
			if diff := cmp.Diff(ids, tt.wantIDs); diff != "" {
				t.Errorf("GET %s first/last ids mismatch (-got +want):\n%s", tt.target, diff)
			}
		})
	}
}

func TestListContactsQuery(t *testing.T) {
	s := newTestServer(t, Config{Contacts: 200, Seed: 1})
	all, _ := s.contacts.list("", 0, 1000)
	c := all[17]
	domain := c.Email[strings.IndexByte(c.Email, '@')+1:]
	tests := []struct {
		name string
		q    string
	}{
		{"name, other case", strings.ToUpper(c.Name)},
		{"email domain", domain},
		{"company", c.Company},
		{"no match", "zzz-no-such-contact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int
			for _, x := range all {
				lq := strings.ToLower(tt.q)
				if strings.Contains(strings.ToLower(x.Name), lq) || strings.Contains(strings.ToLower(x.Email), lq) || strings.Contains(strings.ToLower(x.Company), lq) {
					want = append(want, x.ID)
				}
			}
			rec := request{method: "GET", target: "/api/contacts?per_page=500&q=" + strings.ReplaceAll(tt.q, " ", "+")}.do(t, s.Handler())
			got := decode[listBody[Contact]](t, rec)
			var ids []int
			for _, x := range got.Items {
				ids = append(ids, x.ID)
			}
			if diff := cmp.Diff(ids, want); diff != "" {
				t.Errorf("GET ?q=%s ids mismatch (-got +want):\n%s", tt.q, diff)
			}
			if got.Total != len(want) {
				t.Errorf("GET ?q=%s total = %d, want %d", tt.q, got.Total, len(want))
			}
			if tt.name != "no match" && len(want) == 0 {
				t.Errorf("GET ?q=%s matched nothing; the case is vacuous", tt.q)
			}
		})
	}
}

func TestContactRoundTrip(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 10}).Handler()
	alice := http.Header{"X-Crm-User": {"alice"}}

	// Create: owner defaults to the signed-in user; server fields are ignored.
	rec := request{method: "POST", target: "/api/contacts", header: alice,
		body: `{"id":99,"name":"Grace Hopper","email":"grace@navy.example","phone":"+1-202-555-0100","company":"US Navy","ssn":"078-05-1120","credit_card":"4111111111111111","notes":"Found a moth.","created_at":"1906-12-09T00:00:00Z","extra":true}`,
	}.do(t, h)
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST status = %d, want 201; body %s", rec.Code, rec.Body)
	}
	want := Contact{ID: 11, Name: "Grace Hopper", Email: "grace@navy.example", Phone: "+1-202-555-0100", Company: "US Navy",
		Owner: "alice", SSN: "078-05-1120", CreditCard: "4111111111111111", Notes: "Found a moth.", CreatedAt: testNow, UpdatedAt: testNow}
	if diff := cmp.Diff(decode[Contact](t, rec), want); diff != "" {
		t.Errorf("POST body mismatch (-got +want):\n%s", diff)
	}
	if got := rec.Header().Get("Location"); got != "/api/contacts/11" {
		t.Errorf("POST Location = %q, want /api/contacts/11", got)
	}

	// Read it back.
	rec = request{method: "GET", target: "/api/contacts/11"}.do(t, h)
	if diff := cmp.Diff(decode[Contact](t, rec), want); diff != "" {
		t.Errorf("GET after POST mismatch (-got +want):\n%s", diff)
	}

	// Replace: every editable field is replaced; an empty owner keeps the
	// current one.
	rec = request{method: "PUT", target: "/api/contacts/11", body: `{"name":"Grace B. Hopper","email":"ghopper@navy.example"}`}.do(t, h)
	if rec.Code != http.StatusOK {
		t.Fatalf("PUT status = %d, want 200; body %s", rec.Code, rec.Body)
	}
	want = Contact{ID: 11, Name: "Grace B. Hopper", Email: "ghopper@navy.example", Owner: "alice", CreatedAt: testNow, UpdatedAt: testNow}
	if diff := cmp.Diff(decode[Contact](t, rec), want); diff != "" {
		t.Errorf("PUT body mismatch (-got +want):\n%s", diff)
	}
	rec = request{method: "PUT", target: "/api/contacts/11", body: `{"name":"G","email":"g@navy.example","owner":"carol"}`}.do(t, h)
	if got := decode[Contact](t, rec).Owner; got != "carol" {
		t.Errorf("PUT owner carol: owner = %q, want carol", got)
	}

	// Delete, then it is gone everywhere.
	if rec = (request{method: "DELETE", target: "/api/contacts/11"}).do(t, h); rec.Code != http.StatusNoContent || rec.Body.Len() != 0 {
		t.Fatalf("DELETE status = %d body %q, want 204 and no body", rec.Code, rec.Body)
	}
	for _, rq := range []request{
		{method: "GET", target: "/api/contacts/11"},
		{method: "DELETE", target: "/api/contacts/11"},
		{method: "PUT", target: "/api/contacts/11", body: `{"name":"G","email":"g@navy.example"}`},
	} {
		if rec := rq.do(t, h); rec.Code != http.StatusNotFound {
			t.Errorf("%s after DELETE status = %d, want 404", rq.method, rec.Code)
		}
	}
	if got := decode[listBody[Contact]](t, request{method: "GET", target: "/api/contacts"}.do(t, h)).Total; got != 10 {
		t.Errorf("total after create and delete = %d, want 10", got)
	}

	// Ids are never reused.
	rec = request{method: "POST", target: "/api/contacts", header: alice, body: `{"name":"Next","email":"next@x.example"}`}.do(t, h)
	if got := decode[Contact](t, rec).ID; got != 12 {
		t.Errorf("id after a delete = %d, want 12", got)
	}
}

func TestContactWriteErrors(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 3}).Handler()
	valid := `"name":"Ada","email":"ada@x.example","owner":"bob"`
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		header     http.Header
		wantStatus int
		want       errorBody
	}{
		{"empty body", "POST", "/api/contacts", "", nil, 400, errorBody{Error: "request body is empty"}},
		{"malformed", "POST", "/api/contacts", `{"name":`, nil, 400, errorBody{Error: "invalid JSON"}},
		{"not an object", "POST", "/api/contacts", `[1,2]`, nil, 400, errorBody{Error: "invalid JSON"}},
		{"two objects", "POST", "/api/contacts", `{` + valid + `}{}`, nil, 400, errorBody{Error: "invalid JSON"}},
		{"wrong type", "POST", "/api/contacts", `{"name":5}`, nil, 422, errorBody{Error: "validation failed", Fields: map[string]string{"name": "must be a string"}}},
		{"too large", "POST", "/api/contacts", `{` + valid + `,"notes":"` + strings.Repeat("x", maxBodyBytes) + `"}`, nil, 413, errorBody{Error: "request body too large"}},
		{"too large after the object", "POST", "/api/contacts", `{` + valid + `}` + strings.Repeat(" ", maxBodyBytes), nil, 413, errorBody{Error: "request body too large"}},
		{"everything invalid", "POST", "/api/contacts",
			`{"name":" ","email":"no-at-sign","phone":"call me","company":"` + strings.Repeat("c", 201) + `","owner":"mallory","ssn":"123456789","credit_card":"4111111111111112","notes":"` + strings.Repeat("n", 10_001) + `"}`,
			nil, 422, errorBody{Error: "validation failed", Fields: map[string]string{
				"name": "is required", "email": "is not a valid email address", "phone": "is not a valid phone number",
				"company": "is too long", "owner": "is not a CRM user", "ssn": "must look like 123-45-6789",
				"credit_card": "must be 13 to 19 digits passing the Luhn check", "notes": "is too long",
			}}},
		{"missing required", "POST", "/api/contacts", `{}`, nil, 422, errorBody{Error: "validation failed", Fields: map[string]string{
			"name": "is required", "email": "is required", "owner": "is required",
		}}},
		{"anonymous needs an owner", "POST", "/api/contacts", `{"name":"A","email":"a@x.example"}`, nil, 422, errorBody{Error: "validation failed", Fields: map[string]string{"owner": "is required"}}},
		{"unknown signed-in user needs an owner", "POST", "/api/contacts", `{"name":"A","email":"a@x.example"}`, http.Header{"X-Crm-User": {"eve"}}, 422, errorBody{Error: "validation failed", Fields: map[string]string{"owner": "is required"}}},
		{"put invalid", "PUT", "/api/contacts/1", `{"name":"A","email":"a@@x"}`, nil, 422, errorBody{Error: "validation failed", Fields: map[string]string{"email": "is not a valid email address"}}},
		{"put unknown id", "PUT", "/api/contacts/404", `{` + valid + `}`, nil, 404, errorBody{Error: "contact not found"}},
		{"put bad id", "PUT", "/api/contacts/x1", `{` + valid + `}`, nil, 400, errorBody{Error: "id must be a positive integer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: tt.method, target: tt.target, body: tt.body, header: tt.header}.do(t, h)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s status = %d, want %d; body %.200s", tt.method, tt.target, rec.Code, tt.wantStatus, rec.Body)
			}
			if diff := cmp.Diff(decode[errorBody](t, rec), tt.want); diff != "" {
				t.Errorf("%s %s error body mismatch (-got +want):\n%s", tt.method, tt.target, diff)
			}
		})
	}
	if got := decode[listBody[Contact]](t, request{method: "GET", target: "/api/contacts"}.do(t, h)).Total; got != 3 {
		t.Errorf("total after rejected writes = %d, want 3", got)
	}
}

// Concurrent writers and readers must neither race nor lose a create.
func TestContactsConcurrent(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 50}).Handler()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"name":"W%d-%d","email":"w%d.%d@x.example","owner":"dave"}`, w, i, w, i)
				if rec := (request{method: "POST", target: "/api/contacts", body: body}).do(t, h); rec.Code != http.StatusCreated {
					t.Errorf("POST status = %d, want 201", rec.Code)
				}
				request{method: "GET", target: "/api/contacts?q=w"}.do(t, h)
				request{method: "PUT", target: fmt.Sprintf("/api/contacts/%d", 1+i), body: body}.do(t, h)
			}
		})
	}
	wg.Wait()
	if got := decode[listBody[Contact]](t, request{method: "GET", target: "/api/contacts"}.do(t, h)).Total; got != 50+writers*each {
		t.Errorf("total = %d, want %d", got, 50+writers*each)
	}
}
