package apikey

import (
	"context"
	"slices"
	"testing"
	"time"
)

// Attack (id enumeration by timing): Verify of an unknown id must cost what
// a wrong secret for a real id costs, so response times do not tell which
// ids exist.
//
// The samples are interleaved (unknown, wrong, malformed, unknown, …) so
// that load on the machine hits all three alike, and compared by median.
// A malformed key, which does no HMAC, is the control: if the test cannot
// tell that apart from a wrong secret, the machine is too noisy to judge
// and the test skips rather than guesses. Under the race detector it only
// logs.
func TestVerifyTiming(t *testing.T) {
	store := openFile(t, keyFile(t), FileOptions{CheckInterval: time.Hour})
	m := newManager(t, store, newClock(), nil)
	for range 50 {
		create(t, m, Spec{})
	}
	k, _ := create(t, m, Spec{})
	unknown, wrong := unknownKey(t), otherSecret(t, k)
	malformed := k[:KeyLen-1] + "!"
	ctx := context.Background()

	const (
		samples = 3000
		batch   = 8
		bound   = 0.20 // relative difference of medians allowed
	)
	measure := func(key string) time.Duration {
		start := time.Now()
		for range batch {
			m.Verify(ctx, key)
		}
		return time.Since(start) / batch
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	var diff float64
	for attempt := 1; attempt <= 3; attempt++ {
		var u, w, c []time.Duration
		for range samples {
			u = append(u, measure(unknown))
			w = append(w, measure(wrong))
			c = append(c, measure(malformed))
		}
		mu, mw, mc := median(u), median(w), median(c)
		diff = float64(mu-mw) / float64(min(mu, mw))
		t.Logf("attempt %d: median Verify unknown id %v, wrong secret %v (difference %+.1f%%); malformed control %v",
			attempt, mu, mw, 100*diff, mc)
		if raceEnabled {
			t.Log("race detector on: timings logged, not judged")
			return
		}
		if mc*3/2 > mw {
			t.Skipf("cannot tell a malformed key (%v) from a wrong secret (%v): too noisy to judge", mc, mw)
		}
		if diff <= bound && diff >= -bound {
			return
		}
	}
	t.Errorf("unknown-id and wrong-secret Verify differ by %+.1f%% in median time, more than %.0f%%: ids can be enumerated by timing", 100*diff, 100*bound)
}
