package crm

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoutesStatus(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 30}).Handler()
	tests := []struct {
		name        string
		req         request
		wantStatus  int
		wantType    string
		wantAllow   string
		wantBodyHas string
	}{
		{"home", request{method: "GET", target: "/"}, 200, "text/html; charset=utf-8", "", "Acme CRM"},
		{"healthz", request{method: "GET", target: "/healthz"}, 200, "text/plain; charset=utf-8", "", "ok"},
		{"head healthz", request{method: "HEAD", target: "/healthz"}, 200, "text/plain; charset=utf-8", "", ""},
		{"contacts", request{method: "GET", target: "/api/contacts"}, 200, "application/json; charset=utf-8", "", `"items":[`},
		{"contact", request{method: "GET", target: "/api/contacts/7"}, 200, "application/json; charset=utf-8", "", `"id":7`},
		{"deals", request{method: "GET", target: "/api/deals"}, 200, "application/json; charset=utf-8", "", `"contact_id"`},
		{"invoices", request{method: "GET", target: "/api/invoices"}, 200, "application/json; charset=utf-8", "", `"iban":"DE`},
		{"admin users", request{method: "GET", target: "/api/admin/users"}, 200, "application/json; charset=utf-8", "", `"username":"alice"`},
		{"export", request{method: "GET", target: "/api/export/contacts?count=1"}, 200, "application/json; charset=utf-8", "", `"items":[`},
		{"whoami", request{method: "GET", target: "/api/whoami"}, 200, "application/json; charset=utf-8", "", `"user":"anonymous"`},
		{"slow", request{method: "GET", target: "/api/slow?ms=0"}, 200, "application/json; charset=utf-8", "", `"slept_ms":0`},
		{"unknown path", request{method: "GET", target: "/nope"}, 404, "application/json; charset=utf-8", "", `{"error":"not found"}`},
		{"unknown api path", request{method: "GET", target: "/api/contacts/7/deals"}, 404, "application/json; charset=utf-8", "", `{"error":"not found"}`},
		{"trailing slash", request{method: "GET", target: "/api/contacts/"}, 404, "application/json; charset=utf-8", "", `{"error":"not found"}`},
		{"unknown contact", request{method: "GET", target: "/api/contacts/999"}, 404, "application/json; charset=utf-8", "", `"contact not found"`},
		{"non-numeric id", request{method: "GET", target: "/api/contacts/abc"}, 400, "application/json; charset=utf-8", "", `"id must be a positive integer"`},
		{"zero id", request{method: "DELETE", target: "/api/contacts/0"}, 400, "application/json; charset=utf-8", "", `"id must be a positive integer"`},
		{"POST on a contact", request{method: "POST", target: "/api/contacts/7"}, 405, "application/json; charset=utf-8", "DELETE, GET, HEAD, PUT", `{"error":"method not allowed"}`},
		{"DELETE on the list", request{method: "DELETE", target: "/api/contacts"}, 405, "application/json; charset=utf-8", "GET, HEAD, POST", `"method not allowed"`},
		{"POST on deals", request{method: "POST", target: "/api/deals"}, 405, "application/json; charset=utf-8", "GET, HEAD", `"method not allowed"`},
		{"GET on echo", request{method: "GET", target: "/api/echo"}, 405, "application/json; charset=utf-8", "POST", `"method not allowed"`},
		{"plain GET on ws", request{method: "GET", target: "/api/ws"}, 426, "application/json; charset=utf-8", "", `"websocket upgrade required"`},
		{"unclean path redirects", request{method: "GET", target: "/api//contacts"}, 307, "", "", ""},
		{"unclean unknown path redirects", request{method: "GET", target: "/nope//x"}, 307, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.req.do(t, h)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s status = %d, want %d; body %s", tt.req.method, tt.req.target, rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBodyHas) {
				t.Errorf("body = %s, want it to contain %s", rec.Body, tt.wantBodyHas)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := New(Config{Contacts: 3}, log, fixedClock).Handler()
	tests := []struct {
		name string
		req  request
		want string
	}{
		{"ok", request{method: "GET", target: "/api/contacts/1"}, "method=GET path=/api/contacts/1 status=200"},
		{"not found", request{method: "GET", target: "/missing"}, "method=GET path=/missing status=404"},
		{"method not allowed", request{method: "PATCH", target: "/api/contacts/1"}, "method=PATCH path=/api/contacts/1 status=405"},
		{"no content", request{method: "DELETE", target: "/api/contacts/2"}, "method=DELETE path=/api/contacts/2 status=204"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			tt.req.do(t, h)
			if !strings.Contains(buf.String(), tt.want) || !strings.Contains(buf.String(), "level=DEBUG") {
				t.Errorf("log = %q, want a DEBUG line containing %q", buf.String(), tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the joined error, in order; nil means valid
	}{
		{"zero value", Config{}, nil},
		{"custom", Config{Contacts: 10, Seed: 9, IdentityHeader: "X-User", RolesHeader: "X-Groups"}, nil},
		{"everything wrong", Config{Contacts: -1, IdentityHeader: "X User", RolesHeader: "X:Roles"},
			[]string{"contacts must be between 0 and 1000000", `identity_header "X User"`, `roles_header "X:Roles"`}},
		{"same header twice", Config{IdentityHeader: "X-A", RolesHeader: "x-a"}, []string{"must differ"}},
		{"too many contacts", Config{Contacts: maxContacts + 1}, []string{"contacts must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Validate() = %q, want %d errors", err, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("Validate() error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{Contacts: 200, IdentityHeader: "X-CRM-User", RolesHeader: "X-CRM-Roles"}},
		{"kept", Config{Contacts: 5, Seed: 3, IdentityHeader: "X-U", RolesHeader: "X-R"}, Config{Contacts: 5, Seed: 3, IdentityHeader: "X-U", RolesHeader: "X-R"}},
		{"invalid replaced", Config{Contacts: maxContacts + 5, IdentityHeader: "bad header"}, Config{Contacts: maxContacts, IdentityHeader: "X-CRM-User", RolesHeader: "X-CRM-Roles"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.in.withDefaults(), tt.want); diff != "" {
				t.Errorf("withDefaults() mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestNewNilLoggerAndClock(t *testing.T) {
	h := New(Config{Contacts: 1}, nil, nil).Handler()
	rec := request{method: "POST", target: "/api/contacts", body: `{"name":"N","email":"n@x.example","owner":"bob"}`}.do(t, h)
	if rec.Code != http.StatusCreated {
		t.Fatalf("POST /api/contacts status = %d, want 201; body %s", rec.Code, rec.Body)
	}
}
