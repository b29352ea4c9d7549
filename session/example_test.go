package session_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/crmgate/crmgate/secret"
	"github.com/crmgate/crmgate/session"
)

// The auth stage starts a session at login and loads it on later requests.
func Example() {
	key := make([]byte, 32)
	rand.Read(key) // in the gateway: a resolved env: or file: reference
	cfg := session.Config{Keys: []secret.Ref{secret.FromValue(key)}}
	cfg.Defaults()
	m, err := session.New(cfg, session.NewMemoryStore(session.MemoryOptions{}), nil, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	// OIDC callback: the user logged in.
	w := httptest.NewRecorder()
	rec := &session.Record{UserID: "alice", Roles: []string{"sales"}, Tokens: session.Tokens{Expiry: time.Now().Add(time.Hour)}}
	if err := m.Start(ctx, w, rec, session.ID{}); err != nil {
		panic(err)
	}
	cookie := w.Result().Cookies()[0]
	fmt.Println(cookie.Name, cookie.Secure, cookie.HttpOnly, cookie.Path)

	// A later request.
	r := httptest.NewRequest("GET", "https://crm.example.com/contacts", nil)
	r.AddCookie(cookie)
	got, err := m.Load(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.UserID, got.Roles)
	_ = m.Save(ctx, got) // extend the idle deadline

	// Logout; the cookie no longer works.
	_ = m.End(ctx, httptest.NewRecorder(), got.ID())
	_, err = m.Load(r)
	fmt.Println(errors.Is(err, session.ErrNoSession))
	// Output:
	// __Host-crmgate true true /
	// alice [sales]
	// true
}
