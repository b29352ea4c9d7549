package bearer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/crmgate/crmgate/scope"
)

// Verifier verifies bearer access tokens (JWTs, RFC 9068) of the
// configured issuers and maps them to the subject the policy sees. It is
// safe for concurrent use.
type Verifier struct {
	issuers  map[string]*issuer
	order    []*issuer
	client   *http.Client
	now      func() time.Time
	maxBytes int
	started  atomic.Bool
	// verified remembers the tokens whose signature verified.
	verified verifiedTokens
}

// issuer is one configured issuer, compiled: nothing on the request path
// re-reads its configuration.
type issuer struct {
	cfg         IssuerConfig
	algs        []jose.SignatureAlgorithm
	requireType string // normalized; "" when not required
	rolesParts  []string
	keys        *keySet
	// verifier checks the signature with keys (and only the configured
	// algorithms), iss and aud; exp, nbf and iat are checked here with
	// the configured leeway, which go-oidc has no setting for.
	verifier *oidc.IDTokenVerifier
}

// New returns a verifier for cfg, to which it applies Defaults first. It
// reaches every issuer with client when not nil (ca_file is then not
// read), else with a client of its own per issuer (IssuerConfig.HTTPClient).
// A nil log discards; a nil now is time.Now. New does no I/O: Start
// fetches the keys, and until then every token is refused with
// ErrUnavailable.
func New(cfg Config, client *http.Client, log *slog.Logger, now func() time.Time) (*Verifier, error) {
	cfg.Issuers = slices.Clone(cfg.Issuers)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bearer: invalid configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	v := &Verifier{
		issuers:  make(map[string]*issuer, len(cfg.Issuers)),
		client:   client,
		now:      now,
		maxBytes: cfg.MaxTokenBytes,
	}
	for _, ic := range cfg.Issuers {
		ic.Algorithms = slices.Clone(ic.Algorithms)
		ic.RolesMap = maps.Clone(ic.RolesMap)
		algs := make([]jose.SignatureAlgorithm, len(ic.Algorithms))
		for i, a := range ic.Algorithms {
			algs[i] = jose.SignatureAlgorithm(a)
		}
		is := &issuer{
			cfg:        ic,
			algs:       algs,
			rolesParts: strings.Split(ic.RolesClaim, "."),
			keys:       newKeySet(ic, algs, log, now),
		}
		if ic.RequireType != "" {
			is.requireType = normalizeType(ic.RequireType)
		}
		is.verifier = oidc.NewVerifier(ic.Issuer, is.keys, &oidc.Config{
			ClientID:             ic.Audience,
			SupportedSigningAlgs: slices.Clone(ic.Algorithms),
			SkipExpiryCheck:      true,
			Now:                  now,
		})
		v.issuers[ic.Issuer] = is
		v.order = append(v.order, is)
	}
	return v, nil
}

// Start begins fetching every issuer's keys (discovery first when no
// jwks_url is set) in the background and returns at once. An issuer that
// cannot be reached is retried with exponential back-off until ctx ends;
// meanwhile its tokens are refused with ErrUnavailable. Start returns an
// error only when an issuer's ca_file cannot be read, or on a second
// call.
func (v *Verifier) Start(ctx context.Context) error {
	if !v.started.CompareAndSwap(false, true) {
		return errors.New("bearer: Start called twice")
	}
	clients := make([]*http.Client, len(v.order))
	var errs []error
	for i, is := range v.order {
		clients[i] = v.client
		if clients[i] == nil {
			c, err := is.cfg.HTTPClient()
			if err != nil {
				errs = append(errs, fmt.Errorf("bearer: issuer %s: %w", is.cfg.Issuer, err))
			}
			clients[i] = c
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, is := range v.order {
		is.keys.start(ctx, clients[i])
	}
	return nil
}

// Ready reports whether the keys of every issuer are known, for readiness
// probes. Until then the tokens of the issuers without keys are refused
// with ErrUnavailable.
func (v *Verifier) Ready() bool {
	for _, is := range v.order {
		if is.keys.current() == nil {
			return false
		}
	}
	return true
}

// Verify verifies raw as an access token of a configured issuer and
// returns its subject: Kind scope.KindService (scope.KindUser, with ACR,
// AMR and AuthTime, when the token states the auth_time of a user's
// authentication), ID the issuer's
// SubjectClaim, Roles the mapped RolesClaim, and Claims holding "iss",
// "scopes" (a []string, empty when the token grants none) and
// "client_id" and "azp" when the token has them.
//
// Every error wraps one of the package's sentinels; see the package
// documentation for the checks and their order. A token is only read
// unverified to pick its issuer by iss: an unknown issuer costs no
// network call and no signature check.
func (v *Verifier) Verify(ctx context.Context, raw string) (*scope.Subject, error) {
	if len(raw) > v.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(raw), v.maxBytes)
	}
	key := keyOf(raw)
	if e, ok := v.verified.get(key); ok {
		// Signed by a key of the issuer's current set, with this iss and
		// aud: only what depends on the time is left to check.
		return e.is.subject(e.t, v.now())
	}
	t, err := parseToken(raw)
	if err != nil {
		return nil, err
	}
	is, ok := v.issuers[t.iss]
	if !ok {
		return nil, fmt.Errorf("%w: %.64q", ErrUnknownIssuer, t.iss)
	}
	sub, snap, err := is.verify(ctx, raw, t, v.now())
	if err != nil {
		return nil, err
	}
	v.verified.add(key, verifiedToken{is: is, t: t, snap: snap})
	return sub, nil
}

// verify checks t, parsed from raw, and returns its subject and the key set
// (of the issuer's keys) its signature verified with: the current one, or
// a newer one an unknown kid caused to be fetched.
func (is *issuer) verify(ctx context.Context, raw string, t *rawToken, now time.Time) (*scope.Subject, *keySnapshot, error) {
	if !slices.Contains(is.cfg.Algorithms, t.alg) {
		return nil, nil, fmt.Errorf("%w: alg %s is not configured for issuer %s", ErrInvalidSignature, t.alg, is.cfg.Issuer)
	}
	if err := is.checkType(t.typ); err != nil {
		return nil, nil, err
	}
	if is.keys.current() == nil {
		is.keys.nudge()
		return nil, nil, fmt.Errorf("%w: keys of %s not fetched yet", ErrUnavailable, is.cfg.Issuer)
	}
	jws, err := jose.ParseSignedCompact(raw, is.algs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	a := &attempt{raw: raw, jws: jws}
	_, oerr := is.verifier.Verify(context.WithValue(ctx, attemptKey{}, a), raw)
	switch {
	case a.err != nil:
		return nil, nil, a.err
	case a.payload == nil:
		// Refused before the signature was checked.
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, oerr)
	case !bytes.Equal(a.payload, t.payload):
		// The claims read below are the ones that were signed.
		return nil, nil, fmt.Errorf("%w: verified payload differs from the parsed one", ErrMalformed)
	}
	sub, err := is.subject(t, now)
	if err != nil {
		return nil, nil, err
	}
	if oerr != nil {
		// go-oidc refused a token these checks accept (e.g. two claims
		// whose names differ only in case): refuse it too.
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, oerr)
	}
	return sub, a.snap, nil
}

// checkType applies explicit typing (RFC 8725 §3.11): with RequireType,
// typ must be it; without, typ may be absent, JWT or at+jwt (RFC 9068
// §2.1), and any other type is another kind of token (logout+jwt,
// secevent+jwt, dpop+jwt, ...).
func (is *issuer) checkType(typ string) error {
	n := normalizeType(typ)
	if is.requireType != "" {
		if n != is.requireType {
			return fmt.Errorf("%w: typ %.64q, want %s", ErrNotAccessToken, typ, is.cfg.RequireType)
		}
		return nil
	}
	switch n {
	case "", "jwt", "at+jwt":
		return nil
	}
	return fmt.Errorf("%w: typ %.64q is another kind of token", ErrNotAccessToken, typ)
}

// subject checks the verified claims and maps them.
func (is *issuer) subject(t *rawToken, now time.Time) (*scope.Subject, error) {
	c := t.claims
	leeway := is.cfg.Leeway
	exp, ok, err := numericDate(c, "exp")
	switch {
	case err != nil:
		return nil, err
	case !ok:
		// RFC 9068 §2.2: exp is required; a token without one would be
		// valid forever.
		return nil, fmt.Errorf("%w: exp missing", ErrMalformed)
	case !now.Before(exp.Add(leeway)):
		return nil, fmt.Errorf("%w: at %s", ErrExpired, exp.Format(time.RFC3339))
	}
	for _, name := range [...]string{"nbf", "iat"} {
		at, ok, err := numericDate(c, name)
		switch {
		case err != nil:
			return nil, err
		case ok && at.After(now.Add(leeway)):
			return nil, fmt.Errorf("%w: %s is %s", ErrNotYetValid, name, at.Format(time.RFC3339))
		}
	}
	aud, err := audience(c)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(aud, is.cfg.Audience) {
		return nil, fmt.Errorf("%w: aud does not contain %q", ErrInvalidAudience, is.cfg.Audience)
	}
	if err := checkAccessToken(c); err != nil {
		return nil, err
	}
	var id string
	if err := json.Unmarshal(c[is.cfg.SubjectClaim], &id); err != nil || id == "" || len(id) > maxSubjectBytes {
		return nil, fmt.Errorf("%w: %s missing, not a string or longer than %d bytes", ErrMalformed, is.cfg.SubjectClaim, maxSubjectBytes)
	}
	claims := map[string]any{"iss": t.iss, "scopes": is.scopes(c)}
	for _, name := range [...]string{"client_id", "azp"} {
		if s := stringClaim(c, name); s != "" {
			claims[name] = s
		}
	}
	sub := &scope.Subject{Kind: scope.KindService, ID: id, Roles: is.roles(c), Claims: claims}
	// A token that says when a user authenticated (RFC 9068 §2.2.1:
	// auth_time, acr, amr) was issued to a client acting for that user:
	// the subject is the user, whose authentication a step-up checks.
	// Client-credentials tokens carry no auth_time.
	authTime, ok, err := numericDate(c, "auth_time")
	if err != nil {
		return nil, err
	}
	if ok {
		sub.Kind = scope.KindUser
		sub.AuthTime = authTime
		sub.ACR = stringClaim(c, "acr")
		var amr []string
		if raw, has := c["amr"]; has {
			if err := json.Unmarshal(raw, &amr); err != nil || len(amr) > 16 {
				return nil, fmt.Errorf("%w: amr is not a short list of strings", ErrMalformed)
			}
		}
		sub.AMR = amr
	}
	return sub, nil
}

// otherTokenTypes are the values of Keycloak's typ claim for tokens that
// are not access tokens (access tokens say Bearer).
var otherTokenTypes = []string{"id", "refresh", "offline", "logout"}

// checkAccessToken refuses validly signed tokens of other kinds that
// carry the audience: ID tokens (nonce, at_hash, c_hash: OIDC Core §2,
// §3.3.2.11; or Keycloak's typ claim), logout tokens and other security
// events (events, RFC 8417), and sender-constrained tokens (cnf, RFC 8705
// §3, RFC 9449 §6), whose proof of possession a bearer request does not
// show.
func checkAccessToken(c map[string]json.RawMessage) error {
	for _, name := range [...]string{"nonce", "at_hash", "c_hash"} {
		if _, ok := c[name]; ok {
			return fmt.Errorf("%w: %s claim: an ID token", ErrNotAccessToken, name)
		}
	}
	if _, ok := c["events"]; ok {
		return fmt.Errorf("%w: events claim: a logout token or security event", ErrNotAccessToken)
	}
	if _, ok := c["cnf"]; ok {
		return fmt.Errorf("%w: cnf claim: a sender-constrained token, which needs proof of possession", ErrNotAccessToken)
	}
	if typ := stringClaim(c, "typ"); slices.Contains(otherTokenTypes, strings.ToLower(typ)) {
		return fmt.Errorf("%w: typ claim %.64q", ErrNotAccessToken, typ)
	}
	return nil
}

// scopes reads ScopesClaim (a space-separated string or an array); with
// the default claim, scope, a token without one is read from scp, where
// Azure AD and Okta put an array.
func (is *issuer) scopes(c map[string]json.RawMessage) []string {
	v, ok := c[is.cfg.ScopesClaim]
	if !ok && is.cfg.ScopesClaim == DefaultScopesClaim {
		v = c["scp"]
	}
	s := stringList(v, true)
	if s == nil {
		s = []string{}
	}
	return s
}

// roles reads RolesClaim and maps it through RolesMap when set.
func (is *issuer) roles(c map[string]json.RawMessage) []string {
	raw := stringList(lookupClaim(c, is.cfg.RolesClaim, is.rolesParts), false)
	if len(is.cfg.RolesMap) == 0 {
		return raw
	}
	var out []string
	for _, r := range raw {
		if m, ok := is.cfg.RolesMap[r]; ok && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
