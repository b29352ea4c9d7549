package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

type memFixture struct {
	clock *fakeClock
	store *MemoryStore
	m     *Manager
}

func newMemFixture(t *testing.T, keys ...[]byte) *memFixture {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{testKey("a")}
	}
	clock := newClock()
	store := NewMemoryStore(MemoryOptions{Now: clock.Now})
	return &memFixture{clock: clock, store: store, m: newTestManager(t, store, clock, keys...)}
}

func (f *memFixture) load(cookie string) (*Record, error) {
	return f.m.Load(requestWithCookies("__Host-crmgate=" + cookie))
}

func TestStartLoad(t *testing.T) {
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	want := rec.Clone()
	cookie := startSession(t, f.m, rec, ID{})

	got, err := f.load(cookie)
	if err != nil {
		t.Fatalf("Load = %v, want the session", err)
	}
	now := f.clock.Now()
	want.Created, want.LastSeen, want.Version = now, now, 1
	want.IdleExpires, want.Expires = now.Add(30*time.Minute), now.Add(12*time.Hour)
	if d := cmp.Diff(got, want, cmpopts.IgnoreUnexported(Record{})); d != "" {
		t.Errorf("Load (-got +want):\n%s", d)
	}
	if got.ID() != rec.ID() || got.Hash() != rec.Hash() || got.Hash() == "" {
		t.Errorf("Load id/hash = %v/%q, want Start's %v/%q", got.ID(), got.Hash(), rec.ID(), rec.Hash())
	}
	if strings.Contains(got.Hash(), cookie) || strings.Contains(cookie, got.Hash()) {
		t.Errorf("the storage key %q reveals the cookie", got.Hash())
	}
	if s := got.ID().String(); strings.Contains(cookie, s) || s != "session.ID(redacted)" {
		t.Errorf("ID.String() = %q, want it redacted", s)
	}
}

// The sealed plaintext is the record's JSON, byte for byte what
// json.Marshal makes, so replicas that decode with json.Unmarshal read it.
func TestSealedPlaintextIsJSON(t *testing.T) {
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	rec.Claims["html"] = "<b>&</b>"
	for range 3 { // the second and third write reuse the first one's buffers
		startSession(t, f.m, rec, ID{})
		e, err := f.store.Get(t.Context(), rec.Hash())
		if err != nil {
			t.Fatal(err)
		}
		pt, err := f.m.ring.open(e.Key, e.Version, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(pt) != string(want) {
			t.Errorf("sealed plaintext\n%s\nwant json.Marshal's\n%s", pt, want)
		}
	}
}

func TestCookieAttributes(t *testing.T) {
	f := newMemFixture(t)
	w := httptest.NewRecorder()
	rec := aliceRecord(f.clock.Now())
	if err := f.m.Start(t.Context(), w, rec, ID{}); err != nil {
		t.Fatal(err)
	}
	sc := w.Header().Get("Set-Cookie")
	for _, want := range []string{"__Host-crmgate=", "Path=/", "Max-Age=43200", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(strings.ToLower(sc), "domain") {
		t.Errorf("Set-Cookie %q has a Domain; __Host- forbids it", sc)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}

	w = httptest.NewRecorder()
	if err := f.m.End(t.Context(), w, rec.ID()); err != nil {
		t.Fatal(err)
	}
	sc = w.Header().Get("Set-Cookie")
	for _, want := range []string{"__Host-crmgate=;", "Path=/", "Max-Age=0", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc, want) {
			t.Errorf("End's Set-Cookie %q lacks %q", sc, want)
		}
	}
}

func TestLoadAttacks(t *testing.T) {
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	cookie := startSession(t, f.m, rec, ID{})
	raw, err := base64.RawURLEncoding.DecodeString(cookie)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Forged", func(t *testing.T) {
		// An attacker without the key makes up ids and tags.
		other := newMemFixture(t, testKey("attacker"))
		forgedByOtherKey := startSession(t, other.m, aliceRecord(other.clock.Now()), ID{})
		junk := strings.Repeat("A", CookieLen)
		for name, c := range map[string]string{"other key": forgedByOtherKey, "zeros": junk, "random": base64.RawURLEncoding.EncodeToString(randomKey()[:32])} {
			if _, err := f.load(c); !errors.Is(err, ErrInvalidCookie) {
				t.Errorf("Load(%s) = %v, want ErrInvalidCookie", name, err)
			}
		}
	})

	t.Run("Truncated", func(t *testing.T) {
		for n := range len(cookie) {
			if _, err := f.load(cookie[:n]); !errors.Is(err, ErrInvalidCookie) {
				t.Fatalf("Load(cookie[:%d]) = %v, want ErrInvalidCookie", n, err)
			}
		}
		if _, err := f.load(cookie + "A"); !errors.Is(err, ErrInvalidCookie) {
			t.Errorf("Load(cookie+A) = %v, want ErrInvalidCookie", err)
		}
	})

	t.Run("TamperedBytes", func(t *testing.T) {
		// Every byte of the decoded cookie (version, key id, id, tag), each
		// bit flipped.
		for i := range raw {
			for bit := range 8 {
				b := append([]byte(nil), raw...)
				b[i] ^= 1 << bit
				if _, err := f.load(base64.RawURLEncoding.EncodeToString(b)); !errors.Is(err, ErrInvalidCookie) {
					t.Fatalf("Load(byte %d bit %d flipped) = %v, want ErrInvalidCookie", i, bit, err)
				}
			}
		}
	})

	t.Run("TamperedText", func(t *testing.T) {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.%"
		for i := range cookie {
			for _, c := range alphabet {
				if byte(c) == cookie[i] {
					continue
				}
				tampered := cookie[:i] + string(c) + cookie[i+1:]
				if _, err := f.load(tampered); !errors.Is(err, ErrInvalidCookie) {
					t.Fatalf("Load(char %d = %c) = %v, want ErrInvalidCookie", i, c, err)
				}
			}
		}
	})

	t.Run("LookAlikeNames", func(t *testing.T) {
		// Only the exact name counts; these are other cookies.
		for _, name := range []string{"crmgate", "__Secure-crmgate", "__host-crmgate", "__HOST-crmgate", "__Host-crmgate.0", "__Host-crmgate.1", "__Host-Crmgate", "__Host-crmgate_", "x__Host-crmgate"} {
			if _, err := f.m.Load(requestWithCookies(name + "=" + cookie)); !errors.Is(err, ErrNoSession) {
				t.Errorf("Load(%s=<valid>) = %v, want ErrNoSession", name, err)
			}
		}
		// Look-alikes beside the real cookie do not disturb it.
		if _, err := f.m.Load(requestWithCookies("crmgate=x; __Host-crmgate.0=y; __Host-crmgate=" + cookie + "; __host-crmgate=z")); err != nil {
			t.Errorf("Load(real cookie among look-alikes) = %v, want the session", err)
		}
	})

	t.Run("TwoCookies", func(t *testing.T) {
		// Cookie tossing: a second cookie of the same name is planted.
		// Neither is trusted, even when one is valid.
		for name, r := range map[string][]string{
			"same header":      {"__Host-crmgate=" + cookie + "; __Host-crmgate=" + cookie},
			"planted first":    {"__Host-crmgate=" + strings.Repeat("A", CookieLen) + "; __Host-crmgate=" + cookie},
			"two header lines": {"__Host-crmgate=" + cookie, "__Host-crmgate=junk"},
		} {
			if _, err := f.m.Load(requestWithCookies(r...)); !errors.Is(err, ErrAmbiguousCookie) {
				t.Errorf("Load(%s) = %v, want ErrAmbiguousCookie", name, err)
			}
		}
	})

	t.Run("Quoted", func(t *testing.T) {
		if _, err := f.load(`"` + cookie + `"`); !errors.Is(err, ErrInvalidCookie) {
			t.Errorf("Load(quoted) = %v, want ErrInvalidCookie", err)
		}
	})

	t.Run("NoCookie", func(t *testing.T) {
		if _, err := f.m.Load(requestWithCookies()); !errors.Is(err, ErrNoSession) {
			t.Errorf("Load(no cookie) = %v, want ErrNoSession", err)
		}
	})
}

func TestReplayAfterEnd(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		end  func(f *memFixture, rec *Record) error
	}{
		{"End", func(f *memFixture, rec *Record) error { return f.m.End(ctx, httptest.NewRecorder(), rec.ID()) }},
		{"RevokeUser", func(f *memFixture, rec *Record) error {
			n, err := f.m.RevokeUser(ctx, "alice")
			if n != 1 {
				return errors.New("RevokeUser did not count the session")
			}
			return err
		}},
		{"RevokeSession", func(f *memFixture, rec *Record) error { return f.m.RevokeSession(ctx, rec.Hash()) }},
		{"RevokeAll", func(f *memFixture, rec *Record) error { _, err := f.m.RevokeAll(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A cookie captured before logout or revocation is worthless
			// after it.
			f := newMemFixture(t)
			rec := aliceRecord(f.clock.Now())
			cookie := startSession(t, f.m, rec, ID{})
			bob := &Record{UserID: "bob"}
			bobCookie := startSession(t, f.m, bob, ID{})
			if err := tc.end(f, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := f.load(cookie); !errors.Is(err, ErrNoSession) {
				t.Errorf("Load(replayed cookie) = %v, want ErrNoSession", err)
			}
			if err := f.m.Save(ctx, rec); !errors.Is(err, ErrNoSession) {
				t.Errorf("Save(ended session) = %v, want ErrNoSession", err)
			}
			_, err := f.load(bobCookie)
			if tc.name == "RevokeAll" {
				if !errors.Is(err, ErrNoSession) {
					t.Errorf("Load(bob) after RevokeAll = %v, want ErrNoSession", err)
				}
			} else if err != nil {
				t.Errorf("Load(bob) after ending alice's session = %v, want bob's session", err)
			}
		})
	}
}

func TestFixation(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)

	// The attacker logs in and plants their cookie in the victim's browser.
	attacker := &Record{UserID: "mallory"}
	planted := startSession(t, f.m, attacker, ID{})
	old, err := f.load(planted)
	if err != nil {
		t.Fatal(err)
	}
	// The victim logs in; the auth stage passes the id the browser sent.
	victim := aliceRecord(f.clock.Now())
	issued := startSession(t, f.m, victim, old.ID())
	if issued == planted || victim.ID() == old.ID() {
		t.Fatal("Start adopted the planted session id")
	}
	if _, err := f.load(planted); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load(planted cookie) after the victim's login = %v, want ErrNoSession", err)
	}
	got, err := f.load(issued)
	if err != nil || got.UserID != "alice" {
		t.Errorf("Load(issued cookie) = %v, %v; want alice's session", got, err)
	}

	// A planted cookie naming no session is simply not used.
	victim2 := aliceRecord(f.clock.Now())
	if c := startSession(t, f.m, victim2, ID{}); c == issued {
		t.Error("two logins got the same id")
	}

	// Privilege change: Start on the loaded record issues a new id, deletes
	// the old one and keeps the session's lifetime.
	f.clock.Advance(10 * time.Minute)
	cur, _ := f.load(issued)
	prevID, created, expires := cur.ID(), cur.Created, cur.Expires
	cur.ACR = "urn:crmgate:acr:stepup"
	stepped := startSession(t, f.m, cur, prevID)
	if cur.ID() == prevID || stepped == issued {
		t.Error("Start after a privilege change kept the id")
	}
	if !cur.Created.Equal(created) || !cur.Expires.Equal(expires) {
		t.Errorf("Start after a privilege change: created %v expires %v, want the session's %v %v", cur.Created, cur.Expires, created, expires)
	}
	if _, err := f.load(issued); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load(pre-step-up cookie) = %v, want ErrNoSession", err)
	}
	if got, err := f.load(stepped); err != nil || got.ACR != "urn:crmgate:acr:stepup" {
		t.Errorf("Load(stepped-up cookie) = %v, %v", got, err)
	}
	if err := f.m.Save(ctx, cur); err != nil {
		t.Errorf("Save after Start = %v", err)
	}
}

func TestIdleExpiry(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	cookie := startSession(t, f.m, rec, ID{})
	start := f.clock.Now()

	f.clock.Advance(30*time.Minute - time.Second)
	if _, err := f.load(cookie); err != nil {
		t.Fatalf("Load at idle-1s = %v, want the session", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.load(cookie); !errors.Is(err, ErrExpired) {
		t.Fatalf("Load at exactly the idle timeout = %v, want ErrExpired", err)
	}
	if _, err := f.load(cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load after an expired Load = %v, want ErrNoSession (deleted)", err)
	}

	// Save extends the idle deadline from the time of the save.
	rec = aliceRecord(f.clock.Now())
	cookie = startSession(t, f.m, rec, ID{})
	start = f.clock.Now()
	f.clock.Advance(20 * time.Minute)
	if err := f.m.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if want := start.Add(50 * time.Minute); !rec.IdleExpires.Equal(want) || !rec.LastSeen.Equal(start.Add(20*time.Minute)) || rec.Version != 2 {
		t.Errorf("after Save: idle expires %v, last seen %v, version %d; want %v, %v, 2", rec.IdleExpires, rec.LastSeen, rec.Version, want, start.Add(20*time.Minute))
	}
	f.clock.Advance(30*time.Minute - time.Second)
	if _, err := f.load(cookie); err != nil {
		t.Fatalf("Load 1s before the extended idle deadline = %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.load(cookie); !errors.Is(err, ErrExpired) {
		t.Errorf("Load at the extended idle deadline = %v, want ErrExpired", err)
	}
	if err := f.m.Save(ctx, rec); !errors.Is(err, ErrExpired) {
		t.Errorf("Save after the idle deadline = %v, want ErrExpired", err)
	}
}

func TestAbsoluteExpiry(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	cookie := startSession(t, f.m, rec, ID{})
	end := f.clock.Now().Add(12 * time.Hour)

	// Activity every 20 minutes keeps the session past many idle timeouts
	// but not past the absolute one.
	for f.clock.Now().Add(20 * time.Minute).Before(end) {
		f.clock.Advance(20 * time.Minute)
		cur, err := f.load(cookie)
		if err != nil {
			t.Fatalf("Load at %v = %v", f.clock.Now(), err)
		}
		if err := f.m.Save(ctx, cur); err != nil {
			t.Fatalf("Save at %v = %v", f.clock.Now(), err)
		}
		if cur.IdleExpires.After(end) {
			t.Fatalf("Save set idle expiry %v past the absolute %v", cur.IdleExpires, end)
		}
	}
	f.clock.Advance(end.Sub(f.clock.Now()) - time.Second)
	cur, err := f.load(cookie)
	if err != nil {
		t.Fatalf("Load 1s before the absolute timeout = %v", err)
	}
	if !cur.IdleExpires.Equal(end) {
		t.Errorf("idle expiry near the end = %v, want clamped to %v", cur.IdleExpires, end)
	}
	f.clock.Advance(time.Second)
	if _, err := f.load(cookie); !errors.Is(err, ErrExpired) {
		t.Errorf("Load at exactly the absolute timeout = %v, want ErrExpired", err)
	}
}

func TestSaveConflict(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	cookie := startSession(t, f.m, rec, ID{})
	a, _ := f.load(cookie)
	b, _ := f.load(cookie)
	a.Roles = []string{"admin"}
	if err := f.m.Save(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.Email = "other@example.com"
	if err := f.m.Save(ctx, b); !errors.Is(err, ErrConflict) {
		t.Errorf("Save(stale record) = %v, want ErrConflict", err)
	}
	got, _ := f.load(cookie)
	if got.Email != "alice@example.com" || got.Roles[0] != "admin" {
		t.Errorf("after a lost race: %+v; want the first writer's record", got)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	k1, k2 := testKey("old"), testKey("new")
	clock := newClock()
	store := NewMemoryStore(MemoryOptions{Now: clock.Now})
	before := newTestManager(t, store, clock, k1)
	rotated := newTestManager(t, store, clock, k2, k1)
	removed := newTestManager(t, store, clock, k2)

	rec := aliceRecord(clock.Now())
	oldCookie := startSession(t, before, rec, ID{})
	sealedBy := func(hash string) uint32 {
		e, err := store.Get(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := sealedKeyID(e.Data)
		return kid
	}
	if sealedBy(rec.Hash()) != before.ring.active().id {
		t.Fatal("a new session is not sealed under the active key")
	}

	// After rotation the session keeps working...
	cur, err := rotated.Load(requestWithCookies("__Host-crmgate=" + oldCookie))
	if err != nil {
		t.Fatalf("Load(cookie from before the rotation) = %v, want the session", err)
	}
	// ... and its next write re-encrypts it under the new active key.
	if err := rotated.Save(ctx, cur); err != nil {
		t.Fatal(err)
	}
	if got, want := sealedBy(cur.Hash()), rotated.ring.active().id; got != want {
		t.Errorf("after Save the record is sealed under key %08x, want the active %08x", got, want)
	}
	if _, err := rotated.Load(requestWithCookies("__Host-crmgate=" + oldCookie)); err != nil {
		t.Errorf("Load after re-encryption = %v", err)
	}
	if _, err := before.Load(requestWithCookies("__Host-crmgate=" + oldCookie)); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load on a replica without the new key = %v, want ErrNoSession (it cannot read the record)", err)
	}
	// New sessions get cookies of the new key.
	newRec := aliceRecord(clock.Now())
	newCookie := startSession(t, rotated, newRec, ID{})

	// Removing the old key ends the sessions it issued; the new ones live.
	if _, err := removed.Load(requestWithCookies("__Host-crmgate=" + oldCookie)); !errors.Is(err, ErrInvalidCookie) {
		t.Errorf("Load(cookie of a removed key) = %v, want ErrInvalidCookie", err)
	}
	if _, err := removed.Load(requestWithCookies("__Host-crmgate=" + newCookie)); err != nil {
		t.Errorf("Load(cookie of the remaining key) = %v", err)
	}
	// RevokeUser finds sessions indexed under every ring key.
	if n, err := rotated.RevokeUser(ctx, "alice"); err != nil || n != 2 {
		t.Errorf("RevokeUser(alice) across keys = %d, %v; want 2, nil", n, err)
	}
}

func TestStoreTampering(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	a, b := aliceRecord(f.clock.Now()), &Record{UserID: "bob"}
	startSession(t, f.m, a, ID{})
	bobCookie := startSession(t, f.m, b, ID{})
	ea, _ := f.store.Get(ctx, a.Hash())
	eb, _ := f.store.Get(ctx, b.Hash())

	// Someone with write access to the store copies alice's sealed record
	// over bob's session to become alice with bob's cookie.
	moved := eb
	moved.Data = ea.Data
	moved.Version = ea.Version
	if err := f.store.Update(ctx, moved, eb.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := f.load(bobCookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load(record moved from another session) = %v, want ErrNoSession", err)
	}

	// Rolling a record back to an older version under a newer number.
	f2 := newMemFixture(t)
	r := aliceRecord(f2.clock.Now())
	cookie := startSession(t, f2.m, r, ID{})
	v1, _ := f2.store.Get(ctx, r.Hash())
	if err := f2.m.Save(ctx, r); err != nil {
		t.Fatal(err)
	}
	rollback := v1
	rollback.Version = 3
	if err := f2.store.Update(ctx, rollback, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.load(cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("Load(rolled-back record) = %v, want ErrNoSession", err)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	a := aliceRecord(f.clock.Now())
	startSession(t, f.m, a, ID{})
	f.clock.Advance(time.Minute)
	b := &Record{UserID: "bob", Tokens: Tokens{RefreshToken: "secret-token"}}
	startSession(t, f.m, b, ID{})

	got, err := f.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Summary{
		{Hash: a.Hash(), UserID: "alice", Created: a.Created, LastSeen: a.LastSeen, IdleExpires: a.IdleExpires, Expires: a.Expires},
		{Hash: b.Hash(), UserID: "bob", Created: b.Created, LastSeen: b.LastSeen, IdleExpires: b.IdleExpires, Expires: b.Expires},
	}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("List (-got +want):\n%s", d)
	}

	// A session sealed under a key no longer in the ring is listed as such.
	other := newTestManager(t, f.store, f.clock, testKey("other"))
	got, err = other.List(ctx)
	if err != nil || len(got) != 2 || !got[0].Unreadable || got[0].UserID != "" {
		t.Errorf("List with another key = %+v, %v; want 2 unreadable entries", got, err)
	}
}

func TestMemoryStoreBound(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := NewMemoryStore(MemoryOptions{MaxEntries: 3, Now: clock.Now})
	for i, k := range []string{"a", "b", "c"} {
		e := entry(clock, k, "u", 1)
		e.Expires = clock.Now().Add(time.Duration(i+1) * time.Hour)
		if err := s.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Full: the entry closest to expiry makes room.
	if err := s.Create(ctx, entry(clock, "d", "u", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) || s.Len() != 3 {
		t.Errorf("after overflow: Get(a) = %v, Len = %d; want ErrNotFound, 3", err, s.Len())
	}
	// Expired entries are swept on write.
	clock.Advance(150 * time.Minute)
	if err := s.Create(ctx, entry(clock, "e", "u", 1)); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 {
		t.Errorf("Len after sweep = %d, want 2 (c, e)", s.Len())
	}
	if n, _ := s.DeleteUser(ctx, "u"); n != 2 {
		t.Errorf("DeleteUser after eviction = %d, want 2", n)
	}
}

// An operator who lowers the timeouts expects them to apply to sessions
// already written under the longer ones (by this replica before a
// restart, or by a replica not yet updated).
func TestLoweredTimeoutsApplyToExistingSessions(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	cookie := startSession(t, f.m, aliceRecord(f.clock.Now()), ID{})
	short := testConfig(testKey("a"))
	short.IdleTimeout, short.AbsoluteTimeout = 5*time.Minute, time.Hour
	m2, err := New(short, f.store, nil, f.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	load2 := func() (*Record, error) { return m2.Load(requestWithCookies("__Host-crmgate=" + cookie)) }
	f.clock.Advance(4 * time.Minute)
	rec, err := load2()
	if err != nil {
		t.Fatalf("within the shorter idle timeout: %v", err)
	}
	if err := m2.Save(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if want := rec.Created.Add(time.Hour); !rec.Expires.Equal(want) {
		t.Errorf("Save kept the absolute end %v, want the shorter %v", rec.Expires, want)
	}
	f.clock.Advance(5 * time.Minute)
	if _, err := load2(); !errors.Is(err, ErrExpired) {
		t.Errorf("after the shorter idle timeout: %v, want ErrExpired", err)
	}

	cookie = startSession(t, f.m, aliceRecord(f.clock.Now()), ID{})
	for range 14 {
		f.clock.Advance(4 * time.Minute)
		rec, err := load2()
		if err != nil {
			t.Fatalf("active session within the shorter absolute timeout: %v", err)
		}
		if err := m2.Save(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(4 * time.Minute)
	if _, err := load2(); !errors.Is(err, ErrExpired) {
		t.Errorf("after the shorter absolute timeout: %v, want ErrExpired", err)
	}
}
