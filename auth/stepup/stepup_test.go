package stepup

import (
	"strings"
	"testing"
	"time"
)

func TestSatisfies(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	mfa5 := Required{ACR: "mfa", MaxAge: 5 * time.Minute}
	tests := []struct {
		name string
		a    Authentication
		req  Required
		want string // "" for satisfied
	}{
		{"mfa just now", Authentication{ACR: "mfa", AMR: []string{"pwd", "otp"}, AuthTime: now}, mfa5, ""},
		{"mfa at the limit", Authentication{ACR: "mfa", AuthTime: now.Add(-5 * time.Minute)}, mfa5, ""},
		{"mfa too old", Authentication{ACR: "mfa", AuthTime: now.Add(-5*time.Minute - time.Second)}, mfa5, "more than 5m0s"},
		{"password only", Authentication{ACR: "pwd", AMR: []string{"pwd"}, AuthTime: now}, mfa5, `does not reach "mfa"`},
		{"no acr, otp in amr", Authentication{AMR: []string{"pwd", "otp"}, AuthTime: now}, mfa5, ""},
		{"hardware key", Authentication{ACR: "urn:other", AMR: []string{"hwk"}, AuthTime: now}, mfa5, ""},
		{"unknown acr", Authentication{ACR: "gold", AuthTime: now}, mfa5, "does not reach"},
		{"no time with an age", Authentication{ACR: "mfa"}, mfa5, "unknown"},
		{"no time without an age", Authentication{ACR: "mfa"}, Required{ACR: "mfa"}, ""},
		{"from the future", Authentication{ACR: "mfa", AuthTime: now.Add(2 * time.Minute)}, mfa5, "future"},
		{"clock skew", Authentication{ACR: "mfa", AuthTime: now.Add(30 * time.Second)}, mfa5, ""},
		{"mfa satisfies pwd", Authentication{ACR: "mfa", AuthTime: now}, Required{ACR: "pwd"}, ""},
		{"a level that is not configured", Authentication{ACR: "mfa", AuthTime: now}, Required{ACR: "phr"}, "not a configured level"},
		{"empty required level", Authentication{ACR: "mfa", AuthTime: now}, Required{}, "not a configured level"},
	}
	for _, tt := range tests {
		ok, why := c.Satisfies(tt.a, tt.req, now)
		if ok != (tt.want == "") || !strings.Contains(why, tt.want) {
			t.Errorf("%s: Satisfies = %v %q, want %q", tt.name, ok, why, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	c := Config{Levels: []string{"pwd", "pwd", ""}, AMR: map[string][]string{"gold": {""}}}
	err := c.Validate()
	for _, want := range []string{"acr_levels[1]: \"pwd\" repeats", "acr_levels[2]: empty", "amr.gold: \"gold\" is not one of acr_levels", "amr.gold[0]: empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want %q", err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("no levels accepted")
	}
}
