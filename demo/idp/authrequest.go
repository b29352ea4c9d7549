package idp

import (
	"log/slog"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is one authorization request from its arrival at /authorize
// until its code is exchanged. The storage hands out copies, so the library
// never sees a value that a login handler is changing.
type authRequest struct {
	id      string
	created time.Time

	clientID      string
	redirectURI   string
	state         string
	nonce         string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge
	acrValues     []string
	maxAge        *uint // nil: no max_age; 0 also for prompt=login
	prompt        []string
	loginHint     string
	hintSubject   string // sub of a valid id_token_hint

	// pendingUser has passed the password step and still owes the second factor.
	pendingUser string

	// Set when the user has authenticated.
	done     bool
	subject  string
	authTime time.Time
	amr      []string
	acr      string
	sid      string
	browser  string // binding cookie of the browser that signed in

	code       string
	codeIssued time.Time
	consumed   bool // tokens were issued for the code
}

var (
	_ op.AuthRequest    = (*authRequest)(nil)
	_ op.LogAuthRequest = (*authRequest)(nil)
)

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	c.acrValues = slices.Clone(a.acrValues)
	c.prompt = slices.Clone(a.prompt)
	c.amr = slices.Clone(a.amr)
	if a.codeChallenge != nil {
		cc := *a.codeChallenge
		c.codeChallenge = &cc
	}
	if a.maxAge != nil {
		m := *a.maxAge
		c.maxAge = &m
	}
	return &c
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acr }
func (a *authRequest) GetAMR() []string                      { return a.amr }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// LogValue keeps state, nonce and codes out of the logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.id),
		slog.String("client_id", a.clientID),
		slog.String("redirect_uri", a.redirectURI),
		slog.Any("scopes", a.scopes),
	)
}

// wantsMFA reports whether the client asked for the second factor.
func (a *authRequest) wantsMFA() bool { return slices.Contains(a.acrValues, ACRMFA) }

// promptNone reports prompt=none: no page may be shown.
func (a *authRequest) promptNone() bool { return slices.Contains(a.prompt, oidc.PromptNone) }

// refreshRequest is what a refresh token stands for: the original
// authentication, with the scopes of the current request.
type refreshRequest struct {
	token    string
	clientID string
	subject  string
	scopes   []string
	amr      []string
	acr      string
	authTime time.Time
	sid      string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.amr }
func (r *refreshRequest) GetAudience() []string       { return []string{r.clientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *refreshRequest) GetClientID() string         { return r.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// authInfo is the authentication a token request carries, whatever its kind.
type authInfo struct {
	clientID string
	amr      []string
	acr      string
	authTime time.Time
	sid      string
}

// authInfoOf extracts the authentication from a request the storage created;
// ok is false for any other kind.
func authInfoOf(req any) (authInfo, bool) {
	switch r := req.(type) {
	case *authRequest:
		return authInfo{clientID: r.clientID, amr: r.amr, acr: r.acr, authTime: r.authTime, sid: r.sid}, true
	case *refreshRequest:
		return authInfo{clientID: r.clientID, amr: r.amr, acr: r.acr, authTime: r.authTime, sid: r.sid}, true
	}
	return authInfo{}, false
}
