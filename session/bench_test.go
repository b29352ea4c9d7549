package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func BenchmarkManagerLoadMemory(b *testing.B) {
	clock := newClock()
	m := newTestManager(b, NewMemoryStore(MemoryOptions{Now: clock.Now}), clock, testKey("a"), testKey("b"))
	cookie := startSession(b, m, aliceRecord(clock.Now()), ID{})
	r := requestWithCookies("_ga=GA1.2.3; theme=dark; __Host-crmgate=" + cookie + "; lang=en")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerLoadMemoryCold is Load when the record was written by
// another replica (or evicted): it is decrypted and decoded.
func BenchmarkManagerLoadMemoryCold(b *testing.B) {
	clock := newClock()
	m := newTestManager(b, NewMemoryStore(MemoryOptions{Now: clock.Now}), clock, testKey("a"))
	cookie := startSession(b, m, aliceRecord(clock.Now()), ID{})
	r := requestWithCookies("__Host-crmgate=" + cookie)
	b.ReportAllocs()
	for b.Loop() {
		m.decoded.clear()
		if _, err := m.Load(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManagerLoadRedis(b *testing.B) {
	srv := startRedis(b)
	client := srv.Client(b)
	rt := &roundTrips{}
	client.AddHook(rt)
	clock := newClock()
	m := newTestManager(b, NewRedisStore(client, RedisOptions{Prefix: "bench:", Now: clock.Now}), clock, testKey("a"))
	cookie := startSession(b, m, aliceRecord(clock.Now()), ID{})
	r := requestWithCookies("__Host-crmgate=" + cookie)
	if _, err := m.Load(r); err != nil { // warm the connection
		b.Fatal(err)
	}
	b.ReportAllocs()
	rt.n.Store(0)
	n := 0
	for b.Loop() {
		if _, err := m.Load(r); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(rt.n.Load())/float64(n), "roundtrips/op")
}

func BenchmarkManagerSaveRedis(b *testing.B) {
	srv := startRedis(b)
	clock := newClock()
	m := newTestManager(b, NewRedisStore(srv.Client(b), RedisOptions{Prefix: "bench:", Now: clock.Now}), clock, testKey("a"))
	rec := aliceRecord(clock.Now())
	startSession(b, m, rec, ID{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Save(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieDecode(b *testing.B) {
	c := fuzzCodec(b)
	s := c.Encode(newID(c.ring.keys[0].id))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieDecodeForged(b *testing.B) {
	c := fuzzCodec(b)
	s := c.Encode(newID(c.ring.keys[0].id))
	forged := s[:50] + "A" + s[51:]
	if forged == s {
		forged = s[:50] + "B" + s[51:]
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(forged); err == nil {
			b.Fatal("forged cookie accepted")
		}
	}
}

// typicalRecord is a record as sealed: subject, three tokens, fingerprint.
func typicalRecord(b *testing.B) (*keyRing, []byte) {
	ring, err := newKeyRing([][]byte{testKey("a")})
	if err != nil {
		b.Fatal(err)
	}
	pt, err := json.Marshal(aliceRecord(time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	return ring, pt
}

func BenchmarkSeal(b *testing.B) {
	ring, pt := typicalRecord(b)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		ring.seal("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 7, pt)
	}
}

func BenchmarkOpen(b *testing.B) {
	ring, pt := typicalRecord(b)
	key := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sealed := ring.seal(key, 7, pt)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.open(key, 7, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordDecode is the JSON half of a Load after Open.
func BenchmarkRecordDecode(b *testing.B) {
	_, pt := typicalRecord(b)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		var r Record
		if err := json.Unmarshal(pt, &r); err != nil {
			b.Fatal(err)
		}
	}
}
