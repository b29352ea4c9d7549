package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/crmgate/crmgate/ratelimit"
)

func ExampleKeyFor() {
	fmt.Println(ratelimit.KeyFor("user", "alice@example.com"))
	fmt.Println(ratelimit.KeyFor("apikey", "k:1"))
	fmt.Println(ratelimit.KeyForIP(netip.MustParseAddr("::ffff:203.0.113.7")))
	fmt.Println(ratelimit.KeyForIP(netip.MustParseAddr("2001:db8:85a3:1::42")))
	fmt.Println(ratelimit.WithRoute("contacts.export", ratelimit.KeyFor("user", "alice@example.com")))
	// Output:
	// user:alice@example.com
	// apikey:k%3A1
	// ip4:203.0.113.7
	// ip6:20010db885a30001
	// route:contacts.export:user:alice@example.com
}

func ExampleSetHeaders() {
	cfg := ratelimit.Config{Tiers: map[string]ratelimit.Tier{"standard": {Limit: 10, Burst: 2}}}
	cfg.Defaults()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	lim, err := ratelimit.New(cfg, nil, func() time.Time { return now }, nil)
	if err != nil {
		panic(err)
	}
	key := ratelimit.KeyForIP(netip.MustParseAddr("203.0.113.7"))
	for range 3 {
		r, err := lim.Allow(context.Background(), key, "standard")
		if err != nil {
			panic(err) // the caller answers 503
		}
		h := http.Header{}
		ratelimit.SetHeaders(h, "standard", cfg.Tiers["standard"], r)
		fmt.Printf("allowed %v; RateLimit-Policy: %s; RateLimit: %s", r.Allowed, h.Get("RateLimit-Policy"), h.Get("RateLimit"))
		if !r.Allowed {
			fmt.Printf("; Retry-After: %s", h.Get("Retry-After"))
		}
		fmt.Println()
	}
	// Output:
	// allowed true; RateLimit-Policy: "standard";q=10;w=1; RateLimit: "standard";r=1;t=1
	// allowed true; RateLimit-Policy: "standard";q=10;w=1; RateLimit: "standard";r=0;t=1
	// allowed false; RateLimit-Policy: "standard";q=10;w=1; RateLimit: "standard";r=0;t=1; Retry-After: 1
}
