// Package stepup decides whether an authentication is strong and fresh
// enough for a step-up a policy asks for (RFC 9470): the subject's acr
// must reach the required level of an ordered list of levels, or its amr
// must name a method configured to count as that level, and its auth_time
// must lie within the required age.
package stepup

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/crmgate/crmgate/fielderr"
)

// Defaults of Config: the levels and methods of common OpenID providers
// (RFC 8176 amr values) and of the development provider.
var (
	DefaultLevels = []string{"pwd", "mfa"}
	DefaultAMR    = map[string][]string{"mfa": {"otp", "mfa", "hwk", "swk", "sms", "fpt", "face"}}
)

// MaxAge bounds the max_age_s a step-up may ask for.
const MaxAge = 366 * 24 * time.Hour

// Config is the mapping of authentication strengths. The zero value is
// valid once Defaults has run.
type Config struct {
	Levels []string            `yaml:"acr_levels" jsonschema_description:"Authentication context classes (acr) from weakest to strongest: an acr satisfies a step-up to its own level and to every level before it. A policy's step_up.acr must be one of them. Default [pwd, mfa]."`
	AMR    map[string][]string `yaml:"amr" jsonschema_description:"By level: authentication methods (amr, RFC 8176) that show that level was reached even when the acr says less, e.g. mfa: [otp, hwk]. Default mfa: [otp, mfa, hwk, swk, sms, fpt, face]."`
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.Levels == nil {
		c.Levels = slices.Clone(DefaultLevels)
	}
	if c.AMR == nil {
		c.AMR = make(map[string][]string, len(DefaultAMR))
		for k, v := range DefaultAMR {
			if slices.Contains(c.Levels, k) {
				c.AMR[k] = slices.Clone(v)
			}
		}
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Levels) == 0 {
		errs = append(errs, fielderr.New("acr_levels", "at least one level is required"))
	}
	for i, l := range c.Levels {
		if l == "" {
			errs = append(errs, fielderr.New(fmt.Sprintf("acr_levels[%d]", i), "empty"))
		} else if slices.Index(c.Levels, l) != i {
			errs = append(errs, fielderr.New(fmt.Sprintf("acr_levels[%d]", i), "%q repeats an earlier level", l))
		}
	}
	for level, methods := range c.AMR {
		if !slices.Contains(c.Levels, level) {
			errs = append(errs, fielderr.New("amr."+level, "%q is not one of acr_levels", level))
		}
		for i, m := range methods {
			if m == "" {
				errs = append(errs, fielderr.New(fmt.Sprintf("amr.%s[%d]", level, i), "empty"))
			}
		}
	}
	return errors.Join(errs...)
}

// Known reports whether acr is one of the configured levels.
func (c Config) Known(acr string) bool { return slices.Contains(c.Levels, acr) }

// Authentication is what a subject's authentication shows.
type Authentication struct {
	ACR      string
	AMR      []string
	AuthTime time.Time
}

// Required is what a step-up asks for: a level, and an age (0: any).
type Required struct {
	ACR    string
	MaxAge time.Duration
}

// Satisfies reports whether a satisfies req at now, and if not why: the
// level is not reached (or req names no configured level), or the
// authentication is older than req.MaxAge (or its time is unknown, or in
// the future beyond a minute of clock skew).
func (c Config) Satisfies(a Authentication, req Required, now time.Time) (bool, string) {
	want := slices.Index(c.Levels, req.ACR)
	if want < 0 {
		return false, fmt.Sprintf("acr %q is not a configured level", req.ACR)
	}
	if !c.reaches(a, want) {
		return false, fmt.Sprintf("acr %q does not reach %q", a.ACR, req.ACR)
	}
	if req.MaxAge > 0 {
		switch {
		case a.AuthTime.IsZero():
			return false, "the time of the authentication is unknown"
		case a.AuthTime.After(now.Add(time.Minute)):
			return false, "the time of the authentication is in the future"
		case now.Sub(a.AuthTime) > req.MaxAge:
			return false, fmt.Sprintf("authenticated %s ago, more than %s", now.Sub(a.AuthTime).Truncate(time.Second), req.MaxAge)
		}
	}
	return true, ""
}

func (c Config) reaches(a Authentication, want int) bool {
	if have := slices.Index(c.Levels, a.ACR); have >= want {
		return true
	}
	// A method that counts as a level at or above the one wanted.
	for level, methods := range c.AMR {
		if slices.Index(c.Levels, level) < want {
			continue
		}
		for _, m := range a.AMR {
			if slices.Contains(methods, m) {
				return true
			}
		}
	}
	return false
}
