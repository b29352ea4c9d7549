package session

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// signedInRecord is the record the OIDC callback hands to Manager.Start
// for user i of a provider like the demo one: the subject, roles, groups,
// ACR/AMR and auth_time of the ID token, the identity claims the auth
// package keeps (iss, sid, names), the provider's tokens (a signed ID
// token, RS256, and an opaque refresh token; the access token is checked
// and not kept) and the fingerprint bound at sign-in. Every value that differs between users in
// reality (ids, names, nonces, signatures) differs here too, so nothing is
// shared between sessions that would not be shared in production.
func signedInRecord(rng *rand.Rand, i int, now time.Time) *Record {
	sub := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	sid := randomText(rng, 32)
	user := "user" + strconv.Itoa(i)
	email := user + "@example.com"
	authTime := now.Add(-time.Duration(rng.IntN(60)) * time.Second).Truncate(time.Second)
	const iss = "https://idp.example.com"
	idToken := fakeJWT(rng, "JWT", map[string]any{
		"iss": iss, "sub": sub, "aud": "crmgate", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(),
		"auth_time": authTime.Unix(), "nonce": randomText(rng, 43), "acr": "urn:crmgate:acr:mfa",
		"amr": []string{"pwd", "otp"}, "sid": sid, "at_hash": randomText(rng, 22),
		"email": email, "email_verified": true, "name": "User " + strconv.Itoa(i),
		"preferred_username": user, "roles": []string{"sales", "support"}, "groups": []string{"emea"},
	})
	return &Record{
		UserID:   sub,
		Email:    email,
		Roles:    []string{"sales", "support"},
		Groups:   []string{"emea"},
		ACR:      "urn:crmgate:acr:mfa",
		AMR:      []string{"pwd", "otp"},
		AuthTime: authTime,
		Claims: map[string]any{
			"iss": iss, "sid": sid, "preferred_username": user, "name": "User " + strconv.Itoa(i),
		},
		Tokens: Tokens{
			IDToken:      idToken,
			RefreshToken: randomText(rng, 43),
			Expiry:       now.Add(time.Hour),
		},
		Fingerprint: map[string]string{
			"ja4":             "t13d1516h2_8daaf6152771_02713d6af862",
			"user_agent":      "firefox/140",
			"ip_prefix":       fmt.Sprintf("198.51.%d.0/24", rng.IntN(256)),
			"accept_language": "de-ch,de,en",
		},
	}
}

// randomText is n characters of base64url of random bytes.
func randomText(rng *rand.Rand, n int) string {
	b := make([]byte, (n*3+3)/4)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// fakeJWT is a compact JWS with the given claims and a random 2048-bit RSA
// signature's worth of bytes: the size and entropy of a real one.
func fakeJWT(rng *rand.Rand, typ string, claims map[string]any) string {
	head, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k-2026-03", "typ": typ})
	body, _ := json.Marshal(claims)
	sig := make([]byte, 256)
	for i := range sig {
		sig[i] = byte(rng.Uint32())
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(head) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString(sig)
}

// nopWriter is a ResponseWriter for session cookies nobody reads.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// heapInUse is the heap in use after full collections.
func heapInUse() (inuse, alloc uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc
}

// fillSessions starts n signed-in sessions on m, as n sign-ins would.
func fillSessions(tb testing.TB, m *Manager, n int, now time.Time) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w := &nopWriter{h: http.Header{}}
	ctx := context.Background()
	for i := range n {
		if err := m.Start(ctx, w, signedInRecord(rng, i, now), ID{}); err != nil {
			tb.Fatalf("Start %d: %v", i, err)
		}
		clear(w.h)
	}
}

// BenchmarkSessionMemory reports what signed-in sessions cost this
// process: in the memory store, the store and the Manager together; with
// Redis, what the gateway keeps beside Redis (the Manager's decoded
// records and the client). bytes/session is the heap in use after
// collection over the number of sessions, live-bytes/session the bytes of
// the live objects alone (without the free space of partly used spans).
// One iteration fills a fresh store; the Redis cases start a redis-server.
//
//	go test ./session -run '^$' -bench SessionMemory -benchtime 1x
func BenchmarkSessionMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("store=memory/sessions="+strconv.Itoa(n), func(b *testing.B) {
			benchSessionMemory(b, n, func(clock *fakeClock) Store {
				return NewMemoryStore(MemoryOptions{MaxEntries: n, Now: clock.Now})
			})
		})
	}
	for _, n := range []int{10_000, 100_000} {
		b.Run("store=redis/sessions="+strconv.Itoa(n), func(b *testing.B) {
			client := startRedis(b).Client(b)
			benchSessionMemory(b, n, func(clock *fakeClock) Store {
				if err := client.FlushDB(context.Background()).Err(); err != nil {
					b.Fatal(err)
				}
				return NewRedisStore(client, RedisOptions{Now: clock.Now})
			})
		})
	}
}

func benchSessionMemory(b *testing.B, n int, newStore func(*fakeClock) Store) {
	var inuse, live float64
	for b.Loop() {
		clock := newClock()
		store := newStore(clock)
		before, beforeLive := heapInUse()
		m := newTestManager(b, store, clock, testKey("a"))
		fillSessions(b, m, n, clock.Now())
		after, afterLive := heapInUse()
		inuse += float64(after) - float64(before)
		live += float64(afterLive) - float64(beforeLive)
		runtime.KeepAlive(m)
	}
	runs := float64(b.N) * float64(n)
	b.ReportMetric(inuse/runs, "bytes/session")
	b.ReportMetric(live/runs, "live-bytes/session")
}
