package bearer

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// A token sent again is accepted without another signature check, but
// only as itself: a changed signature or payload is a different token,
// and the checks that depend on the time still run on every request.
func TestVerifiedTokenMemory(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("ec"))
	e := newEnv(t, p, envOpts{})
	tok := sign(t, key("ec"), e.claims(), signOpts{typ: "at+jwt"})
	for i := range 3 {
		sub, err := e.v.Verify(t.Context(), tok)
		if err != nil || sub.ID != "svc-billing" {
			t.Fatalf("Verify #%d = %+v, %v", i+1, sub, err)
		}
	}
	if n := e.v.verified.len(); n != 1 {
		t.Fatalf("remembered %d tokens, want 1", n)
	}
	// The subject is a new value each time: a caller changing it
	// changes nothing for the next request.
	a, _ := e.v.Verify(t.Context(), tok)
	a.Roles[0], a.Claims["iss"] = "admin", "https://attacker.example"
	b, _ := e.v.Verify(t.Context(), tok)
	if b.Roles[0] != "crm.reader" || b.Claims["iss"] != p.issuer {
		t.Fatalf("a caller's change of the subject leaked into the next one: %+v", b)
	}

	head, payload, sig := splitJWT(t, tok)
	forged := sign(t, key("attackerEC"), e.claimsWith(func(c map[string]any) { c["roles"] = []string{"admin"} }), signOpts{typ: "at+jwt", kid: key("ec").kid})
	_, forgedPayload, _ := splitJWT(t, forged)
	flipped := []byte(sig)
	flipped[len(flipped)/2] ^= 'A' ^ 'B'
	if flipped[len(flipped)/2] == sig[len(sig)/2] {
		flipped[len(flipped)/2] = 'A'
	}
	for name, bad := range map[string]string{
		"the remembered signature on another payload": head + "." + forgedPayload + "." + sig,
		"a changed signature":                         head + "." + payload + "." + string(flipped),
		"the remembered token with a trailing dot":    tok + ".",
	} {
		if sub, err := e.v.Verify(t.Context(), bad); err == nil {
			t.Errorf("%s: accepted as %+v", name, sub)
		}
	}
	if n := e.v.verified.len(); n != 1 {
		t.Errorf("refused tokens were remembered: %d entries, want 1", n)
	}

	e.clock.Add(5*time.Minute + DefaultLeeway)
	_, err := e.v.Verify(t.Context(), tok)
	wantErr(t, "Verify(remembered, expired)", err, ErrExpired)
}

// A key the provider withdraws stops being accepted at the next fetch of
// the key set, for tokens that verified with it before too.
func TestVerifiedTokenKeyWithdrawn(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("ec"), key("rsa"))
	e := newEnv(t, p, envOpts{refresh: 20 * time.Millisecond})
	tok := sign(t, key("ec"), e.claims(), signOpts{typ: "at+jwt"})
	if _, err := e.v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	is := e.v.order[0]
	before := is.keys.current()
	withdrawn := *p.keys.Load()
	withdrawn.Keys = withdrawn.Keys[1:] // only rsa
	p.keys.Store(&withdrawn)
	deadline := time.Now().Add(10 * time.Second)
	for is.keys.current() == before || len(is.keys.current().keys) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the key set was not fetched again")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := e.v.Verify(t.Context(), tok)
	if err == nil {
		t.Fatal("a token of a withdrawn key was accepted")
	}
	if !errors.Is(err, ErrInvalidSignature) && !errors.Is(err, ErrUnavailable) {
		t.Errorf("Verify(withdrawn key) = %v, want ErrInvalidSignature", err)
	}
	if _, err := e.v.Verify(t.Context(), sign(t, key("rsa"), e.claims(), signOpts{})); err != nil {
		t.Errorf("Verify(a key still published) = %v", err)
	}
}

// The memory is bounded: once full it starts over.
func TestVerifiedTokensBounded(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("ec"))
	e := newEnv(t, p, envOpts{})
	is := e.v.order[0]
	var v verifiedTokens
	for i := range verifiedEntries + 10 {
		v.add(keyOf(strings.Repeat("x", i+1)), verifiedToken{is: is, snap: is.keys.current()})
		if n := v.len(); n > verifiedEntries {
			t.Fatalf("%d entries after %d adds, want at most %d", n, i+1, verifiedEntries)
		}
	}
	if _, ok := v.get(keyOf(strings.Repeat("x", verifiedEntries+10))); !ok {
		t.Error("the latest token was not remembered")
	}
	v.add(keyOf("no key set"), verifiedToken{is: is})
	if _, ok := v.get(keyOf("no key set")); ok {
		t.Error("a token without the key set it verified with was remembered")
	}
}

func splitJWT(t *testing.T, tok string) (head, payload, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", tok)
	}
	return parts[0], parts[1], parts[2]
}

// Concurrent requests with remembered and new tokens while the key set is
// fetched again (run with -race).
func TestVerifiedTokensConcurrent(t *testing.T) {
	t.Parallel()
	p := newProvider(t, key("ec"))
	e := newEnv(t, p, envOpts{refresh: 5 * time.Millisecond})
	toks := make([]string, 4)
	for i := range toks {
		toks[i] = sign(t, key("ec"), e.claimsWith(func(c map[string]any) { c["jti"] = strings.Repeat("j", i+1) }), signOpts{typ: "at+jwt"})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := e.v.Verify(t.Context(), toks[(g+i)%len(toks)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Verify = %v", err)
	}
}
