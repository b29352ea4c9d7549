package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// SetHeaders writes the RateLimit-Policy and RateLimit fields of the IETF
// draft "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers,
// structured-field form) for a check of tier tierName, and Retry-After
// (RFC 9110 §10.2.3) when the check was denied:
//
//	RateLimit-Policy: "standard";q=10;w=1
//	RateLimit: "standard";r=7;t=1
//	Retry-After: 1
//
// q is the tier's Limit and w its Window in seconds; r is Remaining and t
// the seconds until the bucket is full again. Durations are rounded up;
// Retry-After is at least 1. It leaves other fields alone, including a
// Retry-After already set when the check was allowed.
func SetHeaders(h http.Header, tierName string, tier Tier, r Result) {
	name := sfString(tierName)
	window := tier.Window
	if window <= 0 {
		window = time.Second
	}
	buf := make([]byte, 0, 64)
	buf = append(buf, name...)
	buf = append(buf, ";q="...)
	buf = strconv.AppendInt(buf, int64(tier.Limit), 10)
	buf = append(buf, ";w="...)
	buf = strconv.AppendInt(buf, seconds(window), 10)
	h.Set("RateLimit-Policy", string(buf))

	buf = append(buf[:0], name...)
	buf = append(buf, ";r="...)
	buf = strconv.AppendInt(buf, int64(max(r.Remaining, 0)), 10)
	buf = append(buf, ";t="...)
	buf = strconv.AppendInt(buf, seconds(r.Reset), 10)
	h.Set("RateLimit", string(buf))

	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(seconds(r.RetryAfter), 1), 10))
	}
}

// seconds rounds d up to whole seconds; negative is 0.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// sfString is s as a structured-field String (RFC 9651 §3.3.3). Tier names
// are validated to need no escaping; anything else is escaped, and bytes
// an sf-string cannot hold become '?'.
func sfString(s string) string {
	if validTierName(s) {
		return `"` + s + `"`
	}
	buf := make([]byte, 0, len(s)+2)
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20 || c > 0x7e:
			buf = append(buf, '?')
		default:
			buf = append(buf, c)
		}
	}
	return string(append(buf, '"'))
}
