package bearer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// maxClaimDepth bounds how deep a token's header and claims may nest. An
// access token's claims nest a few levels (Keycloak's
// resource_access.<client>.roles is three); the policy input refuses
// deeper than 32, and so does this.
const maxClaimDepth = 32

// maxSubjectBytes bounds the subject's id, as OIDC Core §2 bounds sub.
const maxSubjectBytes = 255

// rawToken is a compact JWS split and decoded, not yet verified: nothing
// in it may be trusted beyond choosing which issuer's rules and keys to
// verify it with.
type rawToken struct {
	header  map[string]json.RawMessage
	alg     string
	typ     string // "" when absent
	payload []byte
	claims  map[string]json.RawMessage
	iss     string
}

// b64 decodes the parts of a compact JWS (RFC 7515 §2: base64url without
// padding); Strict refuses non-zero trailing bits, so that one token has
// one spelling.
var b64 = base64.RawURLEncoding.Strict()

// parseToken splits a compact JWS (RFC 7515 §7.1) and decodes its header
// and claims. It refuses every other shape: the five parts of a JWE, the
// JSON serializations, whitespace anywhere, an empty part. It also refuses
// algorithms outside allowedAlgs, since no issuer may be configured with
// them, and header parameters whose meaning it does not implement.
func parseToken(raw string) (*rawToken, error) {
	h, rest, ok1 := strings.Cut(raw, ".")
	p, s, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: not a compact JWS (three dot-separated parts)", ErrMalformed)
	}
	if h == "" || p == "" {
		return nil, fmt.Errorf("%w: empty header or payload", ErrMalformed)
	}
	for _, part := range [...]string{h, p, s} {
		if !isBase64URL(part) {
			return nil, fmt.Errorf("%w: a part is not base64url", ErrMalformed)
		}
	}
	t := &rawToken{}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := decodeObject(hb, &t.header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(t.header["alg"], &t.alg); err != nil || t.alg == "" {
		return nil, fmt.Errorf("%w: header without an alg string", ErrMalformed)
	}
	if !slices.Contains(allowedAlgs, t.alg) {
		// none (in any spelling) and HS* end here, before any key is
		// looked at.
		return nil, fmt.Errorf("%w: alg %q is never accepted", ErrInvalidSignature, t.alg)
	}
	if s == "" {
		return nil, fmt.Errorf("%w: no signature", ErrInvalidSignature)
	}
	if _, err := b64.DecodeString(s); err != nil {
		// go-jose decodes leniently; a signature with non-zero trailing
		// bits would give the same token a second spelling.
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	if _, ok := t.header["crit"]; ok {
		// RFC 7515 §4.1.11: a recipient must refuse extensions it does
		// not understand; this one understands none (not even b64, RFC
		// 7797, which would change what the signature covers).
		return nil, fmt.Errorf("%w: crit header (no extensions are supported)", ErrMalformed)
	}
	if _, ok := t.header["b64"]; ok {
		return nil, fmt.Errorf("%w: b64 header (RFC 7797 is not supported)", ErrMalformed)
	}
	if v, ok := t.header["cty"]; ok {
		var cty string
		if json.Unmarshal(v, &cty) != nil || normalizeType(cty) == "jwt" {
			// RFC 7519 §5.2: a nested JWT, whose outer signature says
			// nothing about the inner token's issuer.
			return nil, fmt.Errorf("%w: nested JWT (cty)", ErrMalformed)
		}
	}
	if v, ok := t.header["typ"]; ok {
		if err := json.Unmarshal(v, &t.typ); err != nil {
			return nil, fmt.Errorf("%w: typ is not a string", ErrMalformed)
		}
	}
	// jku, x5u, x5c and jwk are ignored, never fetched or trusted: the
	// keys come from the issuer's configured key set only (RFC 8725 §3.10).

	if t.payload, err = b64.DecodeString(p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if err := decodeObject(t.payload, &t.claims); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if err := json.Unmarshal(t.claims["iss"], &t.iss); err != nil || t.iss == "" {
		return nil, fmt.Errorf("%w: no iss string", ErrMalformed)
	}
	return t, nil
}

// decodeObject decodes a JSON object's members, leaving their values
// undecoded, after checking that it nests at most maxClaimDepth deep.
func decodeObject(b []byte, v *map[string]json.RawMessage) error {
	if d := jsonDepth(b); d > maxClaimDepth {
		return fmt.Errorf("nests deeper than %d levels", maxClaimDepth)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if *v == nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// jsonDepth returns how deep objects and arrays nest in b, a JSON text. It
// does not validate b (json.Unmarshal does); it only makes sure that
// nothing later walks an unbounded depth. It stops counting past the
// limit.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > maxClaimDepth {
					return deepest
				}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// numericDate reads a JWT NumericDate (RFC 7519 §2): seconds since the
// epoch, maybe fractional. ok is false when the claim is absent.
func numericDate(claims map[string]json.RawMessage, name string) (t time.Time, ok bool, err error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	// A float64 takes only a JSON number, never a string that holds one;
	// null would leave it zero, so it is refused first.
	var f float64
	if string(v) == "null" || json.Unmarshal(v, &f) != nil {
		return time.Time{}, true, fmt.Errorf("%w: %s is not a number", ErrMalformed, name)
	}
	// Up to the year 9999; beyond, time arithmetic would overflow.
	if f < 0 || f > 253402300799 {
		return time.Time{}, true, fmt.Errorf("%w: %s is out of range", ErrMalformed, name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

// audience reads aud: one string or an array of strings (RFC 7519 §4.1.3).
func audience(claims map[string]json.RawMessage) ([]string, error) {
	v, ok := claims["aud"]
	if !ok {
		return nil, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(v, &l); err != nil {
		return nil, fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrMalformed)
	}
	return l, nil
}

// stringClaim returns a string claim, "" when absent or of another type.
func stringClaim(claims map[string]json.RawMessage, name string) string {
	var s string
	if v, ok := claims[name]; ok && json.Unmarshal(v, &s) == nil {
		return s
	}
	return ""
}

// lookupClaim returns the claim named name, or, when there is none, the
// value at the dotted path parts (realm_access.roles). Names with dots,
// such as namespaced claims (https://example.com/roles), are found whole
// first. It descends at most len(parts) levels, which the configuration
// bounds.
func lookupClaim(claims map[string]json.RawMessage, name string, parts []string) json.RawMessage {
	if v, ok := claims[name]; ok {
		return v
	}
	if len(parts) < 2 {
		return nil
	}
	cur := claims
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			return nil
		}
		if i == len(parts)-1 {
			return v
		}
		var next map[string]json.RawMessage
		if json.Unmarshal(v, &next) != nil {
			return nil
		}
		cur = next
	}
	return nil
}

// stringList reads a string or an array of strings; other elements are
// skipped, and so are empty strings and duplicates. With split, a string
// is a space-delimited list (a scope, RFC 6749 §3.3).
func stringList(v json.RawMessage, split bool) []string {
	if v == nil {
		return nil
	}
	var out []string
	var seen map[string]bool // past a few entries, so that de-duplication stays linear
	add := func(s string) {
		switch {
		case s == "":
		case seen != nil:
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		case !slices.Contains(out, s):
			out = append(out, s)
			if len(out) == 16 {
				seen = make(map[string]bool, 64)
				for _, o := range out {
					seen[o] = true
				}
			}
		}
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if !split {
			add(s)
			return out
		}
		for f := range strings.FieldsSeq(s) {
			add(f)
		}
		return out
	}
	var l []json.RawMessage
	if json.Unmarshal(v, &l) != nil {
		return nil
	}
	for _, e := range l {
		if json.Unmarshal(e, &s) == nil {
			add(s)
		}
	}
	return out
}
