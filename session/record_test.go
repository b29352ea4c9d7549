package session

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crmgate/crmgate/scope"
)

func TestRecordJSON(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rec := aliceRecord(now)
	rec.Created, rec.LastSeen, rec.IdleExpires, rec.Expires, rec.Version = now, now, now.Add(time.Minute), now.Add(time.Hour), 4
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&got, rec, cmpopts.IgnoreUnexported(Record{})); d != "" {
		t.Errorf("JSON round trip (-got +want):\n%s", d)
	}
}

// A record sealed before access tokens were dropped still opens; its
// access token is ignored.
func TestRecordJSONWithAccessToken(t *testing.T) {
	old := `{"user_id":"alice","tokens":{"id_token":"id","access_token":"at","refresh_token":"rt","expiry":"2026-03-01T10:00:00Z"},"version":3}`
	var got Record
	if err := json.Unmarshal([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	want := Tokens{IDToken: "id", RefreshToken: "rt", Expiry: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	if got.UserID != "alice" || got.Version != 3 || got.Tokens != want {
		t.Errorf("old record = %+v, want alice, version 3, tokens %+v", got, want)
	}
	b, err := json.Marshal(&got)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "access_token") || strings.Contains(string(b), `"at"`) {
		t.Errorf("re-encoded record %s still carries the access token", b)
	}
}

func TestRecordSubject(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	rec := aliceRecord(now)
	want := &scope.Subject{
		Kind: scope.KindUser, ID: "alice", Email: "alice@example.com",
		Roles: []string{"sales", "support"}, Groups: []string{"emea"},
		ACR: "urn:crmgate:acr:mfa", AMR: []string{"pwd", "otp"}, AuthTime: now.Add(-time.Minute),
		Claims: map[string]any{"tenant": "acme", "department": "sales"},
	}
	if d := cmp.Diff(rec.Subject(), want); d != "" {
		t.Errorf("Subject (-got +want):\n%s", d)
	}
}

func TestRecordCloneIsDeep(t *testing.T) {
	rec := aliceRecord(time.Now())
	rec.Claims["org"] = map[string]any{"units": []any{"a", map[string]any{"b": 1.0}}}
	c := rec.Clone()
	c.Roles[0] = "x"
	c.Fingerprint["ja4"] = "x"
	c.Claims["org"].(map[string]any)["units"].([]any)[0] = "x"
	c.Claims["org"].(map[string]any)["units"].([]any)[1].(map[string]any)["b"] = 2.0
	want := aliceRecord(time.Now())
	want.Claims["org"] = map[string]any{"units": []any{"a", map[string]any{"b": 1.0}}}
	if d := cmp.Diff(rec, want, cmpopts.IgnoreUnexported(Record{}), cmpopts.IgnoreFields(Record{}, "AuthTime", "Tokens")); d != "" {
		t.Errorf("changing a clone changed the original (-got +want):\n%s", d)
	}
}
