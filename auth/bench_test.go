package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// BenchmarkIdentify is the identity stage's cost per request for a
// session in the memory store whose tokens are not due.
func BenchmarkIdentify(b *testing.B) {
	scfg := session.Config{Keys: []secret.Ref{secret.FromValue([]byte("session key for the auth benchmark, 32+ bytes"))}}
	scfg.Defaults()
	sm, err := session.New(scfg, session.NewMemoryStore(session.MemoryOptions{}), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := validConfig()
	rp := New(cfg, sm, nil, nil, nil)
	w := httptest.NewRecorder()
	rec := &session.Record{
		UserID: "alice", Email: "alice@example.com", Roles: []string{"sales", "support"}, ACR: "mfa", AMR: []string{"pwd", "otp"},
		AuthTime: time.Now(), Claims: map[string]any{"sid": "s1", "preferred_username": "alice"},
		Tokens: session.Tokens{IDToken: "x", RefreshToken: "z", Expiry: time.Now().Add(time.Hour)},
	}
	if err := sm.Start(context.Background(), w, rec, session.ID{}); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "https://crm.example.com/contacts", nil)
	req.AddCookie(w.Result().Cookies()[0])
	b.ReportAllocs()
	for b.Loop() {
		sub, _, err := rp.Identify(req)
		if err != nil || sub.ID != "alice" {
			b.Fatalf("Identify = %v, %v", sub, err)
		}
	}
}
