package ratelimit

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSetHeaders(t *testing.T) {
	standard := Tier{Limit: 10, Window: time.Second, Burst: 5}
	for _, tc := range []struct {
		name   string
		tier   string
		t      Tier
		r      Result
		before http.Header
		want   http.Header
	}{
		{"allowed", "standard", standard,
			Result{Allowed: true, Limit: 10, Remaining: 7, Reset: 300 * ms}, nil,
			http.Header{"Ratelimit-Policy": {`"standard";q=10;w=1`}, "Ratelimit": {`"standard";r=7;t=1`}}},
		{"full bucket", "standard", standard,
			Result{Allowed: true, Limit: 10, Remaining: 4}, nil,
			http.Header{"Ratelimit-Policy": {`"standard";q=10;w=1`}, "Ratelimit": {`"standard";r=4;t=0`}}},
		{"denied", "standard", standard,
			Result{Limit: 10, RetryAfter: 100 * ms, Reset: 500 * ms}, nil,
			http.Header{"Ratelimit-Policy": {`"standard";q=10;w=1`}, "Ratelimit": {`"standard";r=0;t=1`}, "Retry-After": {"1"}}},
		{"denied, seconds rounded up", "slow", Tier{Limit: 2, Window: time.Minute, Burst: 2},
			Result{Limit: 2, RetryAfter: 30*time.Second + time.Microsecond, Reset: 60 * time.Second}, nil,
			http.Header{"Ratelimit-Policy": {`"slow";q=2;w=60`}, "Ratelimit": {`"slow";r=0;t=60`}, "Retry-After": {"31"}}},
		{"denied, whole seconds", "daily", Tier{Limit: 1000, Window: 24 * time.Hour, Burst: 10},
			Result{Limit: 1000, RetryAfter: 86400 * ms, Reset: 864 * time.Second}, nil,
			http.Header{"Ratelimit-Policy": {`"daily";q=1000;w=86400`}, "Ratelimit": {`"daily";r=0;t=864`}, "Retry-After": {"87"}}},
		{"longest duration", "standard", standard,
			Result{Limit: 10, RetryAfter: math.MaxInt64, Reset: math.MaxInt64}, nil,
			http.Header{"Ratelimit-Policy": {`"standard";q=10;w=1`}, "Ratelimit": {`"standard";r=0;t=9223372037`}, "Retry-After": {"9223372037"}}},
		{"replaces earlier values", "standard", standard,
			Result{Allowed: true, Limit: 10, Remaining: 1, Reset: 2 * time.Second},
			http.Header{"Ratelimit": {`"other";r=9;t=9`}, "Retry-After": {"120"}},
			http.Header{"Ratelimit-Policy": {`"standard";q=10;w=1`}, "Ratelimit": {`"standard";r=1;t=2`}, "Retry-After": {"120"}}},
		{"name needing escapes", `a"b\c`, standard,
			Result{Allowed: true, Limit: 10, Remaining: 1}, nil,
			http.Header{"Ratelimit-Policy": {`"a\"b\\c";q=10;w=1`}, "Ratelimit": {`"a\"b\\c";r=1;t=0`}}},
		{"name with bytes an sf-string cannot hold", "é\n", standard,
			Result{Allowed: true, Limit: 10, Remaining: 1}, nil,
			http.Header{"Ratelimit-Policy": {`"???";q=10;w=1`}, "Ratelimit": {`"???";r=1;t=0`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.before {
				h[k] = v
			}
			SetHeaders(h, tc.tier, tc.t, tc.r)
			if d := cmp.Diff(h, tc.want); d != "" {
				t.Errorf("SetHeaders(%q, %+v) (-got +want):\n%s", tc.tier, tc.r, d)
			}
		})
	}
}
