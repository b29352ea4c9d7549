package auth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Token verification errors; each failure wraps one of these.
var (
	errIDToken     = errors.New("auth: invalid ID token")
	errNonce       = errors.New("auth: ID token nonce mismatch")
	errAccessToken = errors.New("auth: invalid access token")
	errLogoutToken = errors.New("auth: invalid logout token")
)

// idClaims are the ID token claims the gateway reads beyond go-oidc's.
type idClaims struct {
	Subject         string       `json:"sub"`
	Audience        audience     `json:"aud"`
	AuthorizedParty string       `json:"azp"`
	Expiry          *numericDate `json:"exp"`
	IssuedAt        *numericDate `json:"iat"`
	NotBefore       *numericDate `json:"nbf"`
	AuthTime        *numericDate `json:"auth_time"`
	Nonce           string       `json:"nonce"`
	ACR             string       `json:"acr"`
	AMR             []string     `json:"amr"`
	SID             string       `json:"sid"`

	// Claims that only other kinds of token carry.
	Events json.RawMessage `json:"events"` // logout tokens, SETs (RFC 8417)
	Scope  json.RawMessage `json:"scope"`  // access tokens (RFC 9068 §2.2.3)
}

// audience is the aud claim: one string or an array (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// numericDate is a JWT NumericDate (RFC 7519 §2): seconds, maybe
// fractional.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	f, err := n.Float64()
	if err != nil {
		return err
	}
	d.Time = time.Unix(0, int64(f*float64(time.Second))).UTC()
	return nil
}

func (d *numericDate) value() time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}

// idCheck is what an ID token is verified against besides the provider's
// keys, issuer and the client id.
type idCheck struct {
	// nonce is the login's nonce; empty for a refreshed ID token, which
	// need not carry one (OIDC Core §12.2).
	nonce string
	// maxAge, when set, bounds the age of auth_time (OIDC Core §3.1.3.7
	// item 13).
	maxAge *time.Duration
	// subject, when set, must be the token's sub, and authTime, when set,
	// its auth_time if it has one: a refreshed ID token describes the
	// original authentication of the same user (OIDC Core §12.2).
	subject  string
	authTime time.Time
}

// verifyIDToken verifies raw as an ID token (OIDC Core §3.1.3.7) and
// returns it with its claims and its whole payload.
func (rp *RP) verifyIDToken(ctx context.Context, p *provider, raw string, want idCheck) (*oidc.IDToken, *idClaims, map[string]any, error) {
	if err := checkType(raw, rp.cfg.SigningAlgs, "jwt", "application/jwt"); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errIDToken, err)
	}
	// Signature with a key of the provider's JWKS and a configured
	// algorithm, iss equal to the discovered issuer, aud containing the
	// client id.
	idt, err := p.verifier.Verify(rp.clientContext(ctx), raw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errIDToken, err)
	}
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: claims: %w", errIDToken, err)
	}
	if err := unmarshalUseNumber(rawPayload(raw), &all); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: claims: %w", errIDToken, err)
	}
	now := rp.now()
	skew := rp.cfg.ClockSkew
	switch {
	case c.Subject == "" || len(c.Subject) > 255:
		err = errors.New("sub missing or longer than 255 characters")
	case c.Expiry == nil:
		err = errors.New("exp missing")
	case !now.Before(c.Expiry.Add(skew)):
		err = fmt.Errorf("expired at %s", c.Expiry.Format(time.RFC3339))
	case c.IssuedAt == nil:
		err = errors.New("iat missing")
	case c.IssuedAt.After(now.Add(skew)):
		err = errors.New("iat in the future")
	case c.NotBefore != nil && c.NotBefore.After(now.Add(skew)):
		err = errors.New("nbf in the future")
	case len(c.Audience) > 1 && c.AuthorizedParty == "":
		// OIDC Core §3.1.3.7 items 4 and 5: with several audiences the
		// token must say who it was issued to.
		err = errors.New("several audiences and no azp")
	case c.AuthorizedParty != "" && c.AuthorizedParty != rp.cfg.ClientID:
		err = errors.New("azp is another client")
	case len(c.Events) > 0:
		err = errors.New("a logout token (events claim), not an ID token")
	case len(c.Scope) > 0:
		err = errors.New("an access token (scope claim), not an ID token")
	case want.subject != "" && c.Subject != want.subject:
		err = errors.New("sub is not the session's user")
	case !want.authTime.IsZero() && c.AuthTime != nil && !c.AuthTime.Truncate(time.Second).Equal(want.authTime.Truncate(time.Second)):
		err = errors.New("auth_time is not the session's authentication")
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", errIDToken, err)
	}
	if want.nonce != "" && !constantEqual(c.Nonce, want.nonce) {
		// OIDC Core §3.1.3.7 item 11: binds the token to this browser's
		// login; a token from another login (or an access token, which
		// has no nonce) fails here.
		return nil, nil, nil, errNonce
	}
	if want.maxAge != nil {
		at := c.AuthTime.value()
		if at.IsZero() || now.Sub(at) > *want.maxAge+skew {
			return nil, nil, nil, fmt.Errorf("%w: auth_time missing or older than the requested max_age", errIDToken)
		}
	}
	return idt, &c, all, nil
}

// checkAccessToken refuses an access token that cannot be the one issued
// with idt: the ID token itself, one whose at_hash does not match (OIDC
// Core §3.3.2.9, when present), or an ID token in disguise (a JWT with a
// nonce, which access tokens never carry).
func checkAccessToken(at, rawID string, idt *oidc.IDToken) error {
	switch {
	case at == "":
		return fmt.Errorf("%w: missing", errAccessToken)
	case at == rawID:
		return fmt.Errorf("%w: the ID token was sent as access token", errAccessToken)
	}
	if idt != nil && idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(at); err != nil {
			return fmt.Errorf("%w: at_hash: %w", errAccessToken, err)
		}
	}
	if strings.Count(at, ".") == 2 {
		var c struct {
			Nonce  json.RawMessage `json:"nonce"`
			Events json.RawMessage `json:"events"`
		}
		if json.Unmarshal(rawPayload(at), &c) == nil && (len(c.Nonce) > 0 || len(c.Events) > 0) {
			return fmt.Errorf("%w: an ID or logout token, not an access token", errAccessToken)
		}
	}
	return nil
}

// checkType refuses a JWS whose typ header names another kind of token
// (explicit typing, RFC 8725 §3.11): an access token (at+jwt, RFC 9068
// §2.1) must not pass as an ID token, nor an ID token as a logout token.
// A missing typ is accepted; many providers send none. It also refuses
// algorithms outside algs before anything else looks at the token.
func checkType(raw string, algs []string, allowed ...string) error {
	sigAlgs := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		sigAlgs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(raw, sigAlgs)
	if err != nil {
		return err
	}
	if len(jws.Signatures) != 1 {
		return errors.New("not exactly one signature")
	}
	typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string)
	if typ == "" {
		return nil
	}
	for _, a := range allowed {
		if strings.EqualFold(typ, a) {
			return nil
		}
	}
	return fmt.Errorf("typ %q is another kind of token", typ)
}

// rawPayload returns the decoded payload of a compact JWS without
// verifying it; callers use it only after verification or to refuse.
func rawPayload(jwt string) []byte {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	return b
}

func unmarshalUseNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// constantEqual compares secrets in time independent of where they differ.
func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
