package session

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestDecodedCache(t *testing.T) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		t.Fatal(err)
	}
	rec := aliceRecord(time.Now())
	e := Entry{Key: "k", Version: 3, Data: ring.seal("k", 3, []byte("{}"))}
	c := newDecodedCache(16)
	if c.get(e) != nil {
		t.Fatal("hit in an empty cache")
	}
	c.put(e, rec)
	got := c.get(e)
	if got == nil || got == rec || got.UserID != "alice" {
		t.Fatalf("get after put = %p %v, want a clone of the record", got, got)
	}
	got.Roles[0] = "changed"
	if rec.Roles[0] == "changed" {
		t.Error("a caller's change reached the cached record")
	}
	for name, other := range map[string]Entry{
		"other version": {Key: "k", Version: 4, Data: e.Data},
		"resealed":      {Key: "k", Version: 3, Data: ring.seal("k", 3, []byte("{}"))},
		"other key":     {Key: "j", Version: 3, Data: e.Data},
		"short data":    {Key: "k", Version: 3, Data: e.Data[:10]},
	} {
		if c.get(other) != nil {
			t.Errorf("get(%s) hit, want a miss", name)
		}
	}
	if s := c.stats(); s.Hits != 1 || s.Misses != 5 || s.Entries != 1 || s.Capacity != 16 {
		t.Errorf("stats = %+v, want 1 hit, 5 misses, 1 of 16 entries", s)
	}
	// A newer version replaces the older one in place.
	e4 := Entry{Key: "k", Version: 4, Data: ring.seal("k", 4, []byte("{}"))}
	c.put(e4, &Record{UserID: "alice", Email: "new@example.com"})
	if c.get(e) != nil {
		t.Error("the replaced version still hits")
	}
	if got := c.get(e4); got == nil || got.Email != "new@example.com" {
		t.Errorf("get(new version) = %v, want the new record", got)
	}
	c.drop("k")
	if c.get(e4) != nil {
		t.Error("hit after drop")
	}
	checkCache(t, c)
}

// TestDecodedCacheBound: however many sessions are started and used (an
// attacker scripting sign-ins), the cache never holds more than its bound.
func TestDecodedCacheBound(t *testing.T) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		t.Fatal(err)
	}
	const bound = 100
	c := newDecodedCache(bound)
	rec := aliceRecord(time.Now())
	for i := range 10 * bound {
		key := fmt.Sprintf("attacker-%d", i)
		e := Entry{Key: key, Version: 1, Data: ring.seal(key, 1, []byte("{}"))}
		c.put(e, rec)
		if c.get(e) == nil {
			t.Fatalf("get right after put(%s) missed", key)
		}
		if n := c.len(); n > bound {
			t.Fatalf("after %d sessions the cache holds %d records, bound %d", i+1, n, bound)
		}
	}
	if cap(c.slots) > bound {
		t.Errorf("slots capacity %d, bound %d", cap(c.slots), bound)
	}
	if s := c.stats(); s.Evictions != 9*bound || s.Entries != bound {
		t.Errorf("stats = %+v, want %d evictions, %d entries", s, 9*bound, bound)
	}
	checkCache(t, c)
}

// TestDecodedCacheClock: records in use survive a flood of new ones that
// are never used again (CLOCK's second chance).
func TestDecodedCacheClock(t *testing.T) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		t.Fatal(err)
	}
	const bound = 8
	c := newDecodedCache(bound)
	mk := func(key string) Entry { return Entry{Key: key, Version: 1, Data: ring.seal(key, 1, []byte("{}"))} }
	rec := aliceRecord(time.Now())
	active := []Entry{mk("active-0"), mk("active-1"), mk("active-2")}
	for _, e := range active {
		c.put(e, rec)
	}
	for i := range 100 {
		for _, e := range active {
			if c.get(e) == nil {
				t.Fatalf("active session %s evicted after %d one-off sessions", e.Key, i)
			}
		}
		c.put(mk(fmt.Sprintf("once-%d", i)), rec)
	}
	checkCache(t, c)
}

func TestDecodedCacheDrop(t *testing.T) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		t.Fatal(err)
	}
	c := newDecodedCache(10)
	for i := range 10 {
		key := fmt.Sprintf("k%d", i)
		user := "alice"
		if i%3 == 0 {
			user = "bob"
		}
		c.put(Entry{Key: key, Version: 1, Data: ring.seal(key, 1, []byte("{}"))}, &Record{UserID: user})
	}
	c.dropUser("alice")
	checkCache(t, c)
	for _, s := range c.slots {
		if s.rec.UserID != "bob" {
			t.Errorf("after dropUser(alice) the cache holds %s of %s", s.key, s.rec.UserID)
		}
	}
	if n := c.len(); n != 4 {
		t.Errorf("after dropUser(alice) %d records, want bob's 4", n)
	}
	c.drop("k3")
	c.drop("k3")
	c.drop("missing")
	checkCache(t, c)
	if c.has("k3") || c.len() != 3 {
		t.Errorf("after drop(k3): has = %v, %d records; want false, 3", c.has("k3"), c.len())
	}
	c.clear()
	if c.len() != 0 || c.has("k0") {
		t.Error("records left after clear")
	}
	// Still usable after clear, and the hand within the slots.
	c.put(Entry{Key: "x", Version: 1, Data: ring.seal("x", 1, []byte("{}"))}, &Record{})
	checkCache(t, c)
}

func TestDecodedCacheConcurrent(t *testing.T) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		t.Fatal(err)
	}
	c := newDecodedCache(32)
	entries := make([]Entry, 100)
	for i := range entries {
		key := fmt.Sprintf("k%d", i)
		entries[i] = Entry{Key: key, Version: 1, Data: ring.seal(key, 1, []byte("{}"))}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				e := entries[(i*7+w)%len(entries)]
				switch i % 10 {
				case 0:
					c.drop(e.Key)
				case 1:
					c.dropUser("bob")
				default:
					if c.get(e) == nil {
						c.put(e, &Record{UserID: []string{"alice", "bob"}[i%2]})
					}
				}
			}
		})
	}
	wg.Wait()
	checkCache(t, c)
}

// checkCache checks the cache's invariants.
func checkCache(t *testing.T, c *decodedCache) {
	t.Helper()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.index) != len(c.slots) || len(c.slots) > c.max {
		t.Errorf("index has %d keys, slots %d, bound %d", len(c.index), len(c.slots), c.max)
	}
	for i, s := range c.slots {
		if j, ok := c.index[s.key]; !ok || j != i {
			t.Errorf("slot %d (%s) indexed at %d, %v", i, s.key, j, ok)
		}
	}
	if len(c.slots) > 0 && c.hand >= len(c.slots) {
		t.Errorf("hand %d past %d slots", c.hand, len(c.slots))
	}
}
