package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The OCSF fields of a request event, as a SIEM reads them.
func TestEncodeHTTPRequest(t *testing.T) {
	enc := encoder{product: "1.2.3", instance: "abc", now: time.Now}
	e := reqEvent(1)
	e.Time = time.UnixMilli(1767366245123)
	e.Subject.APIKeyID = "key_1"
	b := enc.appendEvent(nil, &e)
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	want := map[string]any{
		"time": 1767366245123.0, "class_uid": 4002.0, "category_uid": 4.0, "activity_id": 3.0, "type_uid": 400203.0,
		"severity_id": 1.0, "status_id": 1.0, "disposition_id": 1.0, "message": "m1", "duration": 12.0,
		"metadata": map[string]any{"version": OCSFVersion, "product": map[string]any{"name": "crmgate", "vendor_name": "crmgate", "version": "1.2.3"}, "uid": "abc-1", "correlation_uid": "req-1"},
		"actor": map[string]any{
			"user":    map[string]any{"uid": "alice", "name": "alice@example.com", "type": "user", "type_id": 1.0, "groups": []any{map[string]any{"name": "sales"}}, "credential_uid": "key_1"},
			"session": map[string]any{"uid": "3f2a9c"},
		},
		"src_endpoint":  map[string]any{"ip": "203.0.113.7"},
		"http_request":  map[string]any{"http_method": "GET", "url": map[string]any{"path": "/api/contacts/42", "hostname": "crm.example.com"}, "user_agent": "Mozilla/5.0", "uid": "req-1"},
		"http_response": map[string]any{"code": 200.0, "length": 1234.0},
		"unmapped": map[string]any{
			"type": "http.request", "route": "contacts.item", "fingerprint": "match", "policy_revision": "r42",
			"decision": map[string]any{"allow": true, "reason": "sales may read contacts", "redactions": 2.0, "filtered": 0.0},
			"upstream": map[string]any{"name": "crm", "status": 200.0},
		},
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("request event (-got +want):\n%s", d)
	}
}

func TestEncodeSecurityEvents(t *testing.T) {
	enc := encoder{instance: "i", now: time.Now, pseudo: newPseudonymiser([]byte("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!"))}
	for _, tc := range []struct {
		e                      Event
		class, activity, sev   float64
		status                 float64
		hasUser, hasAPI, noRaw bool
	}{
		{Event{Type: TypeLoginFailure, Subject: Subject{Kind: "user", ID: "bob"}, Reason: "nonce_mismatch"}, 3002, 1, 3, 2, true, false, true},
		{Event{Type: TypeHijackSuspected, Subject: Subject{Kind: "user", ID: "bob"}, SessionIDHash: "h"}, 3002, 99, 4, 2, true, false, true},
		{Event{Type: TypeAPIKeyRevoked, Subject: Subject{Kind: "user", ID: "admin"}, Target: Subject{ID: "carol", APIKeyID: "k9"}}, 3001, 5, 2, 1, true, false, true},
		{Event{Type: TypePolicyRejected, Message: "compile error", PolicyRevision: "r7"}, 6003, 3, 3, 2, false, true, false},
		{Event{Type: TypeAdminAction, Action: "delete"}, 6003, 4, 1, 0, false, true, false},
		{Event{Type: "something.new"}, 6003, 99, 1, 0, false, true, false},
	} {
		b := enc.appendEvent(nil, &tc.e)
		var got struct {
			Class    float64        `json:"class_uid"`
			Activity float64        `json:"activity_id"`
			Type     float64        `json:"type_uid"`
			Sev      float64        `json:"severity_id"`
			Status   float64        `json:"status_id"`
			User     map[string]any `json:"user"`
			API      map[string]any `json:"api"`
			Unmapped map[string]any `json:"unmapped"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v\n%s", tc.e.Type, err, b)
		}
		if got.Class != tc.class || got.Activity != tc.activity || got.Type != tc.class*100+tc.activity || got.Sev != tc.sev || got.Status != tc.status ||
			(got.User != nil) != tc.hasUser || (got.API != nil) != tc.hasAPI || got.Unmapped["type"] != string(tc.e.Type) {
			t.Errorf("%s = %s", tc.e.Type, b)
		}
		if tc.noRaw && (strings.Contains(string(b), `"bob"`) || strings.Contains(string(b), `"carol"`) || strings.Contains(string(b), `"admin"`)) {
			t.Errorf("%s: pseudonymised identifier recorded as is: %s", tc.e.Type, b)
		}
	}
	if got := Pseudonym([]byte("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!"), "bob"); !strings.HasPrefix(got, PseudonymPrefix) || len(got) != len(PseudonymPrefix)+32 {
		t.Errorf("Pseudonym = %q", got)
	}
}

// Whatever a field holds, the event stays one line of valid JSON.
func TestEncodeHostileStrings(t *testing.T) {
	enc := encoder{instance: "i", now: time.Now}
	e := Event{Type: TypeHTTPRequest, Path: "/a\nb\"c\\\x00\xff\u2028", UserAgent: "x\r\ny", Fields: []Field{{"k\n", map[string]int{"a": 1}}}}
	b := enc.appendEvent(nil, &e)
	if strings.ContainsAny(string(b), "\n\r") || !json.Valid(b) {
		t.Errorf("event = %q", b)
	}
}
