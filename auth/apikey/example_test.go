package apikey_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/crmgate/crmgate/auth/apikey"
)

// The CLI creates a key; the gateway's identity stage extracts and
// verifies it on each request.
func Example() {
	dir, _ := os.MkdirTemp("", "apikey-example")
	defer os.RemoveAll(dir)
	store, err := apikey.OpenFileStore(filepath.Join(dir, "apikeys.json"), apikey.FileOptions{})
	if err != nil {
		panic(err)
	}
	pepper := make([]byte, 32)
	rand.Read(pepper) // in the gateway: the resolved pepper reference
	m, err := apikey.New(store, pepper, nil, nil)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()

	// `crmgate apikey create`: the plaintext is shown once.
	key, rec, err := m.Create(ctx, apikey.Spec{Name: "nightly export", Owner: "data-team", Scopes: []string{"contacts:read"}, TTL: 90 * 24 * time.Hour})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(key), rec.Name, rec.Scopes)

	// A request.
	sources := []apikey.Source{apikey.MustParseSource("header:X-API-Key"), apikey.MustParseSource("authorization:ApiKey")}
	r := httptest.NewRequest("GET", "https://crm.example.com/api/contacts", nil)
	r.Header.Set("Authorization", "ApiKey "+key)
	presented, from, err := apikey.Extract(r, sources)
	if err != nil {
		panic(err) // the gateway answers 401
	}
	got, err := m.Verify(ctx, presented)
	fmt.Println(from, got.Name, err)
	from.Strip(r.Header) // the upstream never sees the key
	fmt.Println(r.Header.Get("Authorization") == "")

	// `crmgate apikey revoke`.
	_ = m.Revoke(ctx, rec.ID)
	_, err = m.Verify(ctx, presented)
	fmt.Println(errors.Is(err, apikey.ErrDisabled))
	// Output:
	// 76 nightly export [contacts:read]
	// authorization:ApiKey nightly export <nil>
	// true
	// true
}

func ExampleParse() {
	for _, s := range []string{
		"crm_abcdefgh2345_qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqadd2obnc",
		"crm_abcdefgh2345_qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqadd2obnd",
		"crm_abcdefgh2345_qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqadd2obnc\n",
	} {
		id, _, err := apikey.Parse(s)
		fmt.Printf("%q %v\n", id, err)
	}
	// Output:
	// "abcdefgh2345" <nil>
	// "" apikey: malformed credential: checksum does not match
	// "" apikey: malformed credential
}
