package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRefresh(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	rec.Tokens.Expiry = f.clock.Now().Add(5 * time.Minute)
	cookie := startSession(t, f.m, rec, ID{})

	var calls atomic.Int64
	fn := func(ctx context.Context, cur Tokens) (Tokens, error) {
		calls.Add(1)
		if cur.RefreshToken != rec.Tokens.RefreshToken {
			t.Errorf("fn got refresh token %q, want the session's", cur.RefreshToken)
		}
		return Tokens{IDToken: "new", RefreshToken: "rotated", Expiry: f.clock.Now().Add(time.Hour)}, nil
	}

	// Not due: nothing happens.
	if got, err := f.m.Refresh(ctx, rec, fn); err != nil || got != rec || calls.Load() != 0 {
		t.Fatalf("Refresh(not due) = %v, %v after %d calls; want rec itself, no call", got, err, calls.Load())
	}
	// Due at exactly expiry - refresh_before.
	f.clock.Advance(4 * time.Minute)
	if !f.m.NeedsRefresh(rec) {
		t.Fatal("NeedsRefresh at expiry-1m = false, want true")
	}
	got, err := f.m.Refresh(ctx, rec, fn)
	if err != nil || got.Tokens.IDToken != "new" || got.Version != 2 || calls.Load() != 1 {
		t.Fatalf("Refresh(due) = %+v, %v after %d calls", got, err, calls.Load())
	}
	// A request that loaded the old record finds the new tokens without a
	// second call (check again).
	if got2, err := f.m.Refresh(ctx, rec, fn); err != nil || got2.Tokens.IDToken != "new" || calls.Load() != 1 {
		t.Errorf("Refresh(stale record) = %+v, %v after %d calls; want the stored tokens, no call", got2, err, calls.Load())
	}
	stored, _ := f.load(cookie)
	if stored.Tokens.RefreshToken != "rotated" {
		t.Errorf("stored refresh token %q, want rotated", stored.Tokens.RefreshToken)
	}
}

func TestRefreshConcurrentInProcess(t *testing.T) {
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	rec.Tokens.Expiry = f.clock.Now()
	startSession(t, f.m, rec, ID{})
	var calls atomic.Int64
	fn := func(ctx context.Context, cur Tokens) (Tokens, error) {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond)
		return Tokens{IDToken: "new", Expiry: f.clock.Now().Add(time.Hour)}, nil
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			got, err := f.m.Refresh(context.Background(), rec.Clone(), fn)
			if err != nil || got.Tokens.IDToken != "new" {
				t.Errorf("Refresh = %v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times for 50 concurrent requests, want 1", calls.Load())
	}
}

func TestRefreshFailureReleasesLock(t *testing.T) {
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	rec.Tokens.Expiry = f.clock.Now()
	startSession(t, f.m, rec, ID{})
	idp := errors.New("idp down")
	if _, err := f.m.Refresh(ctx, rec, func(context.Context, Tokens) (Tokens, error) { return Tokens{}, idp }); !errors.Is(err, idp) {
		t.Fatalf("Refresh with a failing fn = %v, want its error", err)
	}
	got, err := f.m.Refresh(ctx, rec, func(context.Context, Tokens) (Tokens, error) {
		return Tokens{IDToken: "new", Expiry: f.clock.Now().Add(time.Hour)}, nil
	})
	if err != nil || got.Tokens.IDToken != "new" {
		t.Errorf("Refresh after a failure = %v, %v; want the lock released and a new refresh", got, err)
	}
}

func TestRefreshKeepsConcurrentSave(t *testing.T) {
	// A Save from a request without the lock, between the refresher's read
	// and its write, must not lose either write.
	ctx := context.Background()
	f := newMemFixture(t)
	rec := aliceRecord(f.clock.Now())
	rec.Tokens.Expiry = f.clock.Now()
	cookie := startSession(t, f.m, rec, ID{})
	other, _ := f.load(cookie)
	got, err := f.m.Refresh(ctx, rec, func(context.Context, Tokens) (Tokens, error) {
		other.Fingerprint = map[string]string{"ja4": "rebound"}
		if err := f.m.Save(ctx, other); err != nil {
			t.Errorf("concurrent Save: %v", err)
		}
		return Tokens{IDToken: "new", Expiry: f.clock.Now().Add(time.Hour)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := f.load(cookie)
	if stored.Tokens.IDToken != "new" || stored.Fingerprint["ja4"] != "rebound" || got.Version != stored.Version {
		t.Errorf("after Refresh racing a Save: tokens %q, fingerprint %v, version %d/%d", stored.Tokens.IDToken, stored.Fingerprint, got.Version, stored.Version)
	}
}
