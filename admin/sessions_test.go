package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// sessionsFixture is a real session manager on the memory store with
// sessions for alice (two) and bob (one).
func sessionsFixture(t *testing.T) (*session.Manager, map[string][]*http.Cookie) {
	t.Helper()
	cfg := session.Config{Keys: []secret.Ref{secret.FromValue([]byte(token))}}
	cfg.Defaults()
	m, err := session.New(cfg, session.NewMemoryStore(session.MemoryOptions{}), slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cookies := map[string][]*http.Cookie{}
	for _, u := range []string{"alice", "alice", "bob"} {
		w := httptest.NewRecorder()
		if err := m.Start(context.Background(), w, &session.Record{UserID: u}, session.ID{}); err != nil {
			t.Fatal(err)
		}
		cookies[u] = append(cookies[u], w.Result().Cookies()...)
	}
	return m, cookies
}

func alive(m *session.Manager, c *http.Cookie) bool {
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(c)
	_, err := m.Load(r)
	return err == nil
}

func send(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var bearer = []string{"Authorization", "Bearer " + token}

func TestSessionEndpoints(t *testing.T) {
	m, cookies := sessionsFixture(t)
	logs := &strings.Builder{}
	s := New(Config{Listen: "127.0.0.1:0", Token: secret.FromValue([]byte(token))}, slog.New(slog.NewJSONHandler(logs, nil)), prometheus.NewRegistry())
	s.SetSessions(m)
	h := s.Handler()

	w := send(h, "GET", "/sessions", "", bearer...)
	var list struct {
		Sessions []session.Summary `json:"sessions"`
		Count    int               `json:"count"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || list.Count != 3 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	for _, c := range []*http.Cookie{cookies["alice"][0], cookies["bob"][0]} {
		if strings.Contains(w.Body.String(), c.Value) {
			t.Fatal("the listing reveals a cookie value")
		}
	}
	if w := send(h, "GET", "/sessions?user=bob", "", bearer...); !strings.Contains(w.Body.String(), `"count":1`) || !strings.Contains(w.Body.String(), `"user_id":"bob"`) {
		t.Errorf("filtered list: %s", w.Body)
	}

	// End one of alice's sessions by its hash.
	var aliceHash string
	for _, x := range list.Sessions {
		if x.UserID == "alice" {
			aliceHash = x.Hash
			break
		}
	}
	if w := send(h, "DELETE", "/sessions/"+aliceHash, "", bearer...); w.Code != 200 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	left := 0
	for _, c := range cookies["alice"] {
		if alive(m, c) {
			left++
		}
	}
	if left != 1 {
		t.Errorf("%d of alice's sessions alive after deleting one, want 1", left)
	}

	if w := send(h, "POST", "/sessions/revoke", `{"user":"alice"}`, bearer...); w.Code != 200 || !strings.Contains(w.Body.String(), `"revoked":1`) {
		t.Errorf("revoke user: %d %s", w.Code, w.Body)
	}
	for _, c := range cookies["alice"] {
		if alive(m, c) {
			t.Error("alice still has a session")
		}
	}
	if !alive(m, cookies["bob"][0]) {
		t.Error("revoking alice ended bob's session")
	}
	if w := send(h, "POST", "/sessions/revoke", `{"all":true}`, bearer...); w.Code != 400 || !alive(m, cookies["bob"][0]) {
		t.Errorf("revoke all without confirmation: %d %s", w.Code, w.Body)
	}
	if w := send(h, "POST", "/sessions/revoke", `{"all":true,"confirm":"all"}`, bearer...); w.Code != 200 || alive(m, cookies["bob"][0]) {
		t.Errorf("revoke all: %d %s", w.Code, w.Body)
	}
	out := logs.String()
	if strings.Count(out, "admin: session.revoked") != 3 || !strings.Contains(out, `"target":"user:alice"`) || !strings.Contains(out, `"target":"all"`) {
		t.Errorf("revocations not logged:\n%s", out)
	}
}

func TestSessionEndpointsRefuse(t *testing.T) {
	m, cookies := sessionsFixture(t)
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	s.SetSessions(m)
	h := s.Handler()
	for _, tt := range []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
	}{
		{"list without token", "GET", "/sessions", "", nil, 401},
		{"revoke without token", "POST", "/sessions/revoke", `{"user":"alice"}`, nil, 401},
		{"revoke with wrong token", "POST", "/sessions/revoke", `{"user":"alice"}`, []string{"Authorization", "Bearer " + token + "x"}, 401},
		{"delete without token", "DELETE", "/sessions/" + strings.Repeat("a", 64), "", nil, 401},
		{"bad hash", "DELETE", "/sessions/..%2f..%2fx", "", bearer, 400},
		{"short hash", "DELETE", "/sessions/abc", "", bearer, 400},
		{"empty body", "POST", "/sessions/revoke", "", bearer, 400},
		{"nothing to revoke", "POST", "/sessions/revoke", `{}`, bearer, 400},
		{"user and all", "POST", "/sessions/revoke", `{"user":"alice","all":true,"confirm":"all"}`, bearer, 400},
		{"unknown field", "POST", "/sessions/revoke", `{"usr":"alice"}`, bearer, 400},
		{"two objects", "POST", "/sessions/revoke", `{"user":"bob"}{"all":true,"confirm":"all"}`, bearer, 400},
		{"wrong type", "POST", "/sessions/revoke", `{"user":["alice"]}`, bearer, 400},
		{"oversized", "POST", "/sessions/revoke", `{"user":"` + strings.Repeat("a", 8<<10) + `"}`, bearer, 400},
		{"form body", "POST", "/sessions/revoke", `user=alice`, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, bearer...), 415},
		{"GET revoke", "GET", "/sessions/revoke", "", bearer, 405},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if w := send(h, tt.method, tt.path, tt.body, tt.hdr...); w.Code != tt.want {
				t.Errorf("status %d, want %d: %s", w.Code, tt.want, w.Body)
			}
		})
	}
	for u, cs := range cookies {
		for _, c := range cs {
			if !alive(m, c) {
				t.Errorf("a refused request ended a session of %s", u)
			}
		}
	}
}

// Without a configured token, session operations are refused even though
// /metrics is open: who is signed in and ending sessions is never open.
func TestSessionEndpointsNeedAToken(t *testing.T) {
	m, _ := sessionsFixture(t)
	s := newTestServer(Config{})
	s.SetSessions(m)
	for _, r := range []struct{ method, path, body string }{{"GET", "/sessions", ""}, {"POST", "/sessions/revoke", `{"all":true,"confirm":"all"}`}} {
		if w := send(s.Handler(), r.method, r.path, r.body); w.Code != 403 {
			t.Errorf("%s %s: %d", r.method, r.path, w.Code)
		}
	}
}

func TestSessionEndpointsWithoutSessions(t *testing.T) {
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	if w := send(s.Handler(), "GET", "/sessions", "", bearer...); w.Code != 404 || !strings.Contains(w.Body.String(), "not configured") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

type downStore struct{ Sessions }

func (downStore) List(context.Context) ([]session.Summary, error) {
	return nil, fmt.Errorf("dial: %w", session.ErrUnavailable)
}
func (downStore) RevokeUser(context.Context, string) (int, error) {
	return 0, errors.New("boom")
}

func TestSessionEndpointsStoreDown(t *testing.T) {
	s := newTestServer(Config{Token: secret.FromValue([]byte(token))})
	s.SetSessions(downStore{})
	if w := send(s.Handler(), "GET", "/sessions", "", bearer...); w.Code != 503 {
		t.Errorf("list with the store down: %d", w.Code)
	}
	if w := send(s.Handler(), "POST", "/sessions/revoke", `{"user":"a"}`, bearer...); w.Code != 500 || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("revoke failure: %d %s", w.Code, w.Body)
	}
}
