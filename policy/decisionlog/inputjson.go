package decisionlog

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// appendInput appends the JSON of in exactly as encoding/json writes it
// without HTML escaping (map keys sorted, nil maps and slices null), at a
// fraction of the cost: encoding/json spends most of a Log call on
// reflection otherwise. TestInputJSON holds the two together for every
// field of policy.Input. It reports false when in has no JSON form (a
// claim that is not finite, a time past year 9999).
func appendInput(dst []byte, in *policy.Input, fb *fallback) ([]byte, bool) {
	ok := true
	r := &in.Request
	dst = append(dst, `{"request":{"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, r.Method)
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, r.Path)
	dst = append(dst, `,"query":`...)
	dst = appendQuery(dst, r.Query)
	dst = append(dst, `,"host":`...)
	dst = appendString(dst, r.Host)
	dst = append(dst, `,"client_ip":`...)
	dst = appendString(dst, r.ClientIP)
	dst = append(dst, `,"time":`...)
	dst, ok = appendTime(dst, r.Time)
	dst = append(dst, `,"headers":`...)
	dst = appendStringMap(dst, r.Headers)

	rt := &in.Route
	dst = append(dst, `},"route":{"id":`...)
	dst = appendString(dst, rt.ID)
	dst = append(dst, `,"params":`...)
	dst = appendStringMap(dst, rt.Params)
	dst = append(dst, `,"tags":`...)
	dst = appendStrings(dst, rt.Tags)

	s := &in.Subject
	dst = append(dst, `},"subject":{"kind":`...)
	dst = appendString(dst, s.Kind)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, s.ID)
	dst = append(dst, `,"email":`...)
	dst = appendString(dst, s.Email)
	dst = append(dst, `,"roles":`...)
	dst = appendStrings(dst, s.Roles)
	dst = append(dst, `,"groups":`...)
	dst = appendStrings(dst, s.Groups)
	dst = append(dst, `,"acr":`...)
	dst = appendString(dst, s.ACR)
	dst = append(dst, `,"amr":`...)
	dst = appendStrings(dst, s.AMR)
	dst = append(dst, `,"auth_time":`...)
	dst = strconv.AppendInt(dst, s.AuthTime, 10)
	dst = append(dst, `,"api_key":`...)
	if k := s.APIKey; k == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, k.ID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, k.Name)
		dst = append(dst, `,"owner":`...)
		dst = appendString(dst, k.Owner)
		dst = append(dst, `,"scopes":`...)
		dst = appendStrings(dst, k.Scopes)
		dst = append(dst, `,"tier":`...)
		dst = appendString(dst, k.Tier)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"claims":`...)
	var claimsOK bool
	if s.Claims == nil {
		dst, claimsOK = append(dst, "null"...), true
	} else {
		dst, claimsOK = appendAny(dst, s.Claims, fb, 0)
	}

	dst = append(dst, `},"session":`...)
	if ses := in.Session; ses == nil {
		dst = append(dst, "null"...)
	} else {
		fp := &ses.Fingerprint
		dst = append(dst, `{"age_s":`...)
		dst = strconv.AppendInt(dst, ses.AgeS, 10)
		dst = append(dst, `,"idle_s":`...)
		dst = strconv.AppendInt(dst, ses.IdleS, 10)
		dst = append(dst, `,"fingerprint":{"bound":`...)
		dst = strconv.AppendBool(dst, fp.Bound)
		dst = append(dst, `,"match":`...)
		dst = strconv.AppendBool(dst, fp.Match)
		dst = append(dst, `,"changed":`...)
		dst = appendStrings(dst, fp.Changed)
		dst = append(dst, `,"user_agent":{"bound":`...)
		dst = appendString(dst, fp.UserAgent.Bound)
		dst = append(dst, `,"current":`...)
		dst = appendString(dst, fp.UserAgent.Current)
		dst = append(dst, "}}}"...)
	}
	return append(dst, '}'), ok && claimsOK
}

// appendTime is time.Time's JSON (RFC 3339 with nanoseconds).
func appendTime(dst []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return append(dst, "null"...), false
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), true
}

func appendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// sortedKeys returns m's keys in order, in buf when they fit.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

func appendQuery(dst []byte, q map[string][]string) []byte {
	if q == nil {
		return append(dst, "null"...)
	}
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(q, buf[:]) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendStrings(dst, q[k])
	}
	return append(dst, '}')
}

// fallback encodes the claim values appendAny has no case for, with
// encoding/json.
type fallback struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func (fb *fallback) append(dst []byte, v any) ([]byte, bool) {
	if fb.enc == nil {
		fb.enc = json.NewEncoder(&fb.buf)
		fb.enc.SetEscapeHTML(false)
	}
	fb.buf.Reset()
	if err := fb.enc.Encode(v); err != nil {
		return append(dst, "null"...), false
	}
	return append(dst, bytes.TrimSuffix(fb.buf.Bytes(), []byte{'\n'})...), true
}

// maxAnyDepth is the nesting appendAny handles itself; deeper values (the
// policy refuses claims nested deeper than 32 levels anyway) go to
// encoding/json, which also refuses cycles.
const maxAnyDepth = 40

// appendAny appends a claim value.
func appendAny(dst []byte, v any, fb *fallback, depth int) ([]byte, bool) {
	if depth > maxAnyDepth {
		return fb.append(dst, v)
	}
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, v), true
	case bool:
		return strconv.AppendBool(dst, v), true
	case float64:
		return appendFloat(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case []string:
		return appendStrings(dst, v), true
	case []any:
		if v == nil {
			return append(dst, "null"...), true
		}
		ok := true
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var eok bool
			dst, eok = appendAny(dst, e, fb, depth+1)
			ok = ok && eok
		}
		return append(dst, ']'), ok
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), true
		}
		var buf [16]string
		ok := true
		dst = append(dst, '{')
		for i, k := range sortedKeys(v, buf[:]) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var eok bool
			dst, eok = appendAny(dst, v[k], fb, depth+1)
			ok = ok && eok
		}
		return append(dst, '}'), ok
	}
	return fb.append(dst, v)
}

// appendFloat writes f as encoding/json does (ES6 number formatting).
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(dst, "null"...), false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
