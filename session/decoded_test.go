package session

import (
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
	var c decodedCache
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
	c.drop("k")
	if c.get(e) != nil {
		t.Error("hit after drop")
	}
	for i := range decodedCacheSize + 10 {
		c.put(Entry{Key: string(rune(i)), Version: 1, Data: e.Data}, rec)
	}
	if n := len(c.m); n > decodedCacheSize {
		t.Errorf("cache holds %d records, bound is %d", n, decodedCacheSize)
	}
	c.dropUser("alice")
	if n := len(c.m); n != 0 {
		t.Errorf("cache holds %d records after dropUser, want 0", n)
	}
}
