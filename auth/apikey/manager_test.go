package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// managerHarness is a Manager on one kind of store.
type managerHarness struct {
	name  string
	new   func(t *testing.T) (Store, *fakeClock)
	redis bool
}

func harnesses(t *testing.T) []managerHarness {
	return []managerHarness{
		{name: "file", new: func(t *testing.T) (Store, *fakeClock) {
			return openFile(t, keyFile(t), FileOptions{}), newClock()
		}},
		{name: "redis", redis: true, new: func(t *testing.T) (Store, *fakeClock) {
			_, c := startRedis(t)
			return NewRedisStore(c, RedisOptions{}), newClock()
		}},
	}
}

func TestNew(t *testing.T) {
	s := openFile(t, keyFile(t), FileOptions{})
	for _, tc := range []struct {
		name   string
		store  Store
		pepper []byte
		ok     bool
	}{
		{"valid", s, testPepper("a"), true},
		{"31-byte pepper", s, testPepper("a")[:31], false},
		{"no pepper", s, nil, false},
		{"no store", nil, testPepper("a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.store, tc.pepper, nil, nil)
			if (err == nil) != tc.ok {
				t.Fatalf("New = %v, want ok %v", err, tc.ok)
			}
			if m != nil {
				m.Close()
			}
		})
	}
}

func TestCreateVerify(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			store, clock := h.new(t)
			var logs logBuffer
			m := newManager(t, store, clock, logs.Logger())
			ctx := context.Background()
			spec := Spec{Name: "nightly export", Owner: "data-team", Scopes: []string{"contacts:read"}, Tier: "bulk", TTL: 30 * 24 * time.Hour}
			key, rec, err := m.Create(ctx, spec)
			if err != nil {
				t.Fatalf("Create = %v", err)
			}
			id, _, err := Parse(key)
			if err != nil {
				t.Fatalf("Create returned %q, which Parse refuses: %v", key, err)
			}
			want := &Record{ID: id, Name: spec.Name, Owner: spec.Owner, Scopes: spec.Scopes, Tier: spec.Tier,
				Created: clock.Now(), Expires: clock.Now().Add(spec.TTL), Version: 1}
			if d := cmp.Diff(rec, want); d != "" {
				t.Errorf("Create record (-got +want):\n%s", d)
			}
			got, err := m.Verify(ctx, key)
			if err != nil {
				t.Fatalf("Verify(created key) = %v", err)
			}
			if d := cmp.Diff(got, want); d != "" {
				t.Errorf("Verify record (-got +want):\n%s", d)
			}
			// The stored hash is not the secret, and is not handed out.
			stored, _ := store.Get(ctx, id)
			_, secret, _ := Parse(key)
			if len(stored.Hash) != hashLen || strings.Contains(string(stored.Hash), secret) {
				t.Errorf("stored hash %x", stored.Hash)
			}
			if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), id) {
				t.Errorf("log holds the secret or not the id:\n%s", logs.String())
			}
			if s := got.Subject(); s.Kind != "api_key" || s.ID != id || s.APIKey.Tier != "bulk" || s.APIKey.Scopes[0] != "contacts:read" {
				t.Errorf("Subject() = %+v", s)
			}
		})
	}
}

// TestVerifyRefuses holds the attacks on Verify; every case must fail with
// the reason named, which the gateway logs and never shows.
func TestVerifyRefuses(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			store, clock := h.new(t)
			m := newManager(t, store, clock, nil)
			ctx := context.Background()
			a, recA := create(t, m, Spec{Name: "a"})
			b, _ := create(t, m, Spec{Name: "b"})
			disabled, recD := create(t, m, Spec{Name: "disabled"})
			if err := m.Revoke(ctx, recD.ID); err != nil {
				t.Fatal(err)
			}
			expiring, _ := create(t, m, Spec{Name: "expiring", TTL: time.Hour})
			rotated, recR := create(t, m, Spec{Name: "rotated"})
			if _, _, err := m.Rotate(ctx, recR.ID, time.Hour); err != nil {
				t.Fatal(err)
			}
			_, bSecret, _ := Parse(b)
			swapped := Key{id: recA.ID, secret: bSecret}.Plaintext()
			clock.Advance(time.Hour)

			for _, tc := range []struct {
				name string
				key  string
				want error
			}{
				// Attack: whitespace or line ends around a real key.
				{"trailing space", a + " ", ErrMalformed},
				{"trailing CRLF", a + "\r\n", ErrMalformed},
				{"trailing NUL", a + "\x00", ErrMalformed},
				// Attack: case-folded prefix of a real key.
				{"upper-case prefix", "CRM_" + a[4:], ErrMalformed},
				// Attack: a guessed id with a well-formed secret.
				{"unknown id", unknownKey(t), ErrUnknown},
				// Attack: a key's id with another valid key's secret.
				{"swapped id and secret", swapped, ErrMismatch},
				{"wrong secret", otherSecret(t, a), ErrMismatch},
				// Attack: a revoked key.
				{"disabled", disabled, ErrDisabled},
				// Attack: an expired key.
				{"expired", expiring, ErrExpired},
				// Attack: a rotated-out secret after its overlap.
				{"previous secret after overlap", rotated, ErrSuperseded},
				{"1 MB", strings.Repeat("crm_", 1<<18), ErrTooLong},
			} {
				t.Run(tc.name, func(t *testing.T) {
					rec, err := m.Verify(ctx, tc.key)
					if !errors.Is(err, tc.want) || rec != nil {
						t.Fatalf("Verify = %v, %v; want nil, %v", rec, err, tc.want)
					}
					var ve *VerifyError
					if errors.As(err, &ve) {
						if strings.Contains(err.Error(), tc.key[KeyLen-SecretLen-checkLen:]) {
							t.Errorf("error %q holds the secret", err)
						}
						if id, _, _ := Parse(tc.key); ve.ID != id {
							t.Errorf("VerifyError.ID = %q, want %q", ve.ID, id)
						}
					}
				})
			}
			if errors.Is(ErrSuperseded, ErrMismatch) != true {
				t.Errorf("ErrSuperseded does not wrap ErrMismatch")
			}
		})
	}
}

func TestVerifyDoesNotLeakState(t *testing.T) {
	// A wrong secret is a mismatch whatever the key's state: a client
	// without the secret learns nothing about disabled or expired keys.
	store := openFile(t, keyFile(t), FileOptions{})
	clock := newClock()
	m := newManager(t, store, clock, nil)
	ctx := context.Background()
	k, rec := create(t, m, Spec{TTL: time.Minute})
	if err := m.Revoke(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := m.Verify(ctx, otherSecret(t, k)); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(wrong secret of a disabled, expired key) = %v, want ErrMismatch", err)
	}
	if _, err := m.Verify(ctx, k); !errors.Is(err, ErrDisabled) {
		t.Errorf("Verify(right secret of a disabled, expired key) = %v, want ErrDisabled", err)
	}
}

func TestRotate(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			store, clock := h.new(t)
			m := newManager(t, store, clock, nil)
			ctx := context.Background()
			old, rec := create(t, m, Spec{Name: "rotating"})

			fresh, rec2, err := m.Rotate(ctx, rec.ID, 2*time.Hour)
			if err != nil {
				t.Fatalf("Rotate = %v", err)
			}
			if id, _, _ := Parse(fresh); id != rec.ID || fresh == old {
				t.Fatalf("Rotate returned %s for key %s", Key{id: id}, rec.ID)
			}
			if rec2.Previous == nil || !rec2.Previous.Until.Equal(clock.Now().Add(2*time.Hour)) || rec2.Previous.Hash != nil || rec2.Hash != nil {
				t.Errorf("Rotate record previous = %+v, hash %x; want until now+2h, no hashes", rec2.Previous, rec2.Hash)
			}
			for _, k := range []string{old, fresh} {
				if _, err := m.Verify(ctx, k); err != nil {
					t.Errorf("Verify during the overlap = %v", err)
				}
			}
			clock.Advance(2*time.Hour - time.Second)
			if _, err := m.Verify(ctx, old); err != nil {
				t.Errorf("Verify(old) a second before the overlap ends = %v", err)
			}
			clock.Advance(time.Second)
			// Attack: the previous secret after its overlap.
			if _, err := m.Verify(ctx, old); !errors.Is(err, ErrSuperseded) {
				t.Errorf("Verify(old) after the overlap = %v, want ErrSuperseded", err)
			}
			if _, err := m.Verify(ctx, fresh); err != nil {
				t.Errorf("Verify(new) after the overlap = %v", err)
			}

			// Overlap 0: the old secret stops at once; the one before that too.
			third, _, err := m.Rotate(ctx, rec.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{old, fresh} {
				if _, err := m.Verify(ctx, k); !errors.Is(err, ErrMismatch) {
					t.Errorf("Verify(rotated out at once) = %v, want ErrMismatch", err)
				}
			}
			if _, err := m.Verify(ctx, third); err != nil {
				t.Errorf("Verify(newest) = %v", err)
			}
			// A second rotation within an overlap drops the older secret.
			fourth, _, err := m.Rotate(ctx, rec.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Rotate(ctx, rec.ID, time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Verify(ctx, third); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify(two rotations ago) = %v, want ErrMismatch", err)
			}
			if _, err := m.Verify(ctx, fourth); err != nil {
				t.Errorf("Verify(one rotation ago, in overlap) = %v", err)
			}

			for _, tc := range []struct {
				name    string
				id      string
				overlap time.Duration
				want    error
			}{
				{"negative overlap", rec.ID, -time.Second, ErrInvalid},
				{"overlap over 7 days", rec.ID, MaxOverlap + time.Second, ErrInvalid},
				{"unknown key", ids(1)[0], time.Hour, ErrNotFound},
				{"not an id", "crm_x", time.Hour, ErrNotFound},
			} {
				if _, _, err := m.Rotate(ctx, tc.id, tc.overlap); !errors.Is(err, tc.want) {
					t.Errorf("Rotate(%s) = %v, want %v", tc.name, err, tc.want)
				}
			}
			if _, _, err := m.Rotate(ctx, rec.ID, MaxOverlap); err != nil {
				t.Errorf("Rotate(7 days) = %v", err)
			}
			if err := m.Revoke(ctx, rec.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Rotate(ctx, rec.ID, 0); !errors.Is(err, ErrDisabled) {
				t.Errorf("Rotate(disabled) = %v, want ErrDisabled", err)
			}
		})
	}
}

func TestRevokeDeleteGetList(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			store, clock := h.new(t)
			m := newManager(t, store, clock, nil)
			ctx := context.Background()
			old, r1 := create(t, m, Spec{Name: "one"})
			clock.Advance(time.Second)
			_, r2 := create(t, m, Spec{Name: "two"})
			k1, _, err := m.Rotate(ctx, r1.ID, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Revoke(ctx, r1.ID); err != nil {
				t.Fatalf("Revoke = %v", err)
			}
			if err := m.Revoke(ctx, r1.ID); err != nil {
				t.Errorf("Revoke(revoked) = %v, want nil", err)
			}
			got, err := m.Get(ctx, r1.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Disabled || got.Previous != nil || got.Hash != nil || got.Status(clock.Now()) != StatusDisabled {
				t.Errorf("Get(revoked) = %+v, want disabled without previous secret or hashes", got)
			}
			if _, err := m.Verify(ctx, k1); !errors.Is(err, ErrDisabled) {
				t.Errorf("Verify(revoked) = %v, want ErrDisabled", err)
			}
			// Revoking ends the rotation overlap too.
			if _, err := m.Verify(ctx, old); !errors.Is(err, ErrMismatch) {
				t.Errorf("Verify(previous secret of a revoked key) = %v, want ErrMismatch", err)
			}
			list, err := m.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].ID != r1.ID || list[1].ID != r2.ID || list[0].Hash != nil {
				t.Errorf("List = %v, want [%s %s] oldest first without hashes", list, r1.ID, r2.ID)
			}
			if err := m.Delete(ctx, r1.ID); err != nil {
				t.Fatalf("Delete = %v", err)
			}
			if err := m.Delete(ctx, r1.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Delete(deleted) = %v, want ErrNotFound", err)
			}
			if _, err := m.Verify(ctx, k1); !errors.Is(err, ErrUnknown) {
				t.Errorf("Verify(deleted) = %v, want ErrUnknown", err)
			}
			for _, id := range []string{r1.ID, "", "crm_" + r2.ID} {
				if _, err := m.Get(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
				}
				if err := m.Revoke(ctx, id); !errors.Is(err, ErrNotFound) {
					t.Errorf("Revoke(%q) = %v, want ErrNotFound", id, err)
				}
			}
		})
	}
}

func TestCreateSpec(t *testing.T) {
	m := newManager(t, openFile(t, keyFile(t), FileOptions{}), newClock(), nil)
	for _, tc := range []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"minimal", Spec{Name: "x"}, true},
		{"full", Spec{Name: "Export für Vertrieb", Owner: "ops@example.com", Scopes: []string{"a:read", "b"}, Tier: "gold", TTL: time.Hour}, true},
		{"no name", Spec{}, false},
		{"newline in name", Spec{Name: "a\nb"}, false},
		{"control in owner", Spec{Name: "a", Owner: "\x1b[31m"}, false},
		{"invalid UTF-8", Spec{Name: "\xff"}, false},
		{"long name", Spec{Name: strings.Repeat("n", 201)}, false},
		{"empty scope", Spec{Name: "a", Scopes: []string{""}}, false},
		{"scope with space", Spec{Name: "a", Scopes: []string{"a b"}}, false},
		{"negative ttl", Spec{Name: "a", TTL: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := m.Create(context.Background(), tc.spec)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Create(%+v) = %v, want ok %v or ErrInvalid", tc.spec, err, tc.ok)
			}
		})
	}
}

func TestLastUsed(t *testing.T) {
	for _, h := range harnesses(t) {
		t.Run(h.name, func(t *testing.T) {
			store, clock := h.new(t)
			m := newManager(t, store, clock, nil)
			ctx := context.Background()
			k, rec := create(t, m, Spec{})
			lastUsed := func() time.Time {
				m.usage.wait()
				r, err := m.Get(ctx, rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				return r.LastUsed
			}
			verify := func() {
				if _, err := m.Verify(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			if got := lastUsed(); !got.IsZero() {
				t.Fatalf("LastUsed before use = %v, want zero", got)
			}
			first := clock.Now()
			verify()
			if got := lastUsed(); !got.Equal(first) {
				t.Errorf("LastUsed after use = %v, want %v", got, first)
			}
			clock.Advance(59 * time.Second)
			verify()
			if got := lastUsed(); !got.Equal(first) {
				t.Errorf("LastUsed 59s later = %v, want unchanged %v (at most once a minute)", got, first)
			}
			clock.Advance(time.Second)
			verify()
			if got := lastUsed(); !got.Equal(clock.Now()) {
				t.Errorf("LastUsed a minute later = %v, want %v", got, clock.Now())
			}
			// Failed verifications are not uses.
			clock.Advance(time.Hour)
			m.Verify(ctx, otherSecret(t, k))
			if got := lastUsed(); got.Equal(clock.Now()) {
				t.Errorf("a wrong secret moved LastUsed")
			}
		})
	}
}

// slowStore blocks or fails MarkUsed, to show Verify does not wait for it.
type slowStore struct {
	Store
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (s *slowStore) MarkUsed(ctx context.Context, used map[string]time.Time) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	<-s.release
	return errors.New("disk full")
}

func TestLastUsedOffRequestPath(t *testing.T) {
	var logs logBuffer
	inner := openFile(t, keyFile(t), FileOptions{})
	clock := newClock()
	store := &slowStore{Store: inner, release: make(chan struct{})}
	m := newManager(t, store, clock, logs.Logger())
	ctx := context.Background()
	var keys []string
	for range 5 {
		k, _ := create(t, m, Spec{})
		keys = append(keys, k)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			for _, k := range keys {
				if _, err := m.Verify(ctx, k); err != nil {
					t.Errorf("Verify with a stuck MarkUsed = %v, want nil", err)
				}
			}
			clock.Advance(2 * time.Minute)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Verify waited for MarkUsed")
	}
	close(store.release)
	m.Close()
	store.mu.Lock()
	calls := store.calls
	store.mu.Unlock()
	// One write was in flight; the later uses were batched behind it.
	if calls < 1 || calls > 3 {
		t.Errorf("MarkUsed called %d times for 15 uses, want 1 to 3 batched writes", calls)
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("the failed MarkUsed was not logged:\n%s", logs.String())
	}
}

// Verify holds up under concurrent use, with rotation and revocation
// racing it (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	store := openFile(t, keyFile(t), FileOptions{})
	clock := newClock()
	m := newManager(t, store, clock, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	k, rec := create(t, m, Spec{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := m.Verify(ctx, k); err != nil && !errors.Is(err, ErrMismatch) && !errors.Is(err, ErrDisabled) {
					t.Errorf("Verify = %v", err)
					return
				}
				if g == 0 && i%50 == 0 {
					clock.Advance(time.Minute)
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, _, err := m.Rotate(ctx, rec.ID, time.Hour); err != nil {
				t.Errorf("Rotate = %v", err)
			}
		}
		if err := m.Revoke(ctx, rec.ID); err != nil {
			t.Errorf("Revoke = %v", err)
		}
	})
	wg.Wait()
	if _, err := m.Verify(ctx, k); err == nil {
		t.Errorf("Verify after five rotations and a revocation succeeded")
	}
}

func TestRecordRedaction(t *testing.T) {
	r := record(ids(1)[0], 3)
	r.Previous = &Previous{Hash: testPepper("p"), Until: epoch}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", r, "value", *r)
	for _, out := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", *r, *r, r, r), logged.String()} {
		for _, h := range [][]byte{r.Hash, r.Previous.Hash} {
			if strings.Contains(out, b64(h)) || strings.Contains(out, fmt.Sprintf("%x", h)) || strings.Contains(out, fmt.Sprint(h)) {
				t.Errorf("printed record holds a hash: %s", out)
			}
		}
		if !strings.Contains(out, r.ID) {
			t.Errorf("printed record %q does not name the id", out)
		}
	}
}
