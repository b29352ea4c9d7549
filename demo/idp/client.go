package idp

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/url"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// client is a registered relying party as the library sees it.
type client struct {
	id           string
	secretHash   [sha256.Size]byte
	public       bool
	redirectURIs []string
	postLogout   []string
	backChannel  string
	idTokenTTL   time.Duration
}

var _ op.Client = (*client)(nil)

func newClient(c Client, idTokenTTL time.Duration) *client {
	cl := &client{
		id:           c.ID,
		public:       c.Secret == "",
		redirectURIs: slices.Clone(c.RedirectURIs),
		postLogout:   slices.Clone(c.PostLogoutRedirectURIs),
		backChannel:  c.BackChannelLogoutURI,
		idTokenTTL:   idTokenTTL,
	}
	if !cl.public {
		cl.secretHash = sha256.Sum256([]byte(c.Secret))
	}
	return cl
}

// secretMatches compares in constant time; secrets are long random values
// (see minClientSecret), so a plain SHA-256 is an adequate hash.
func (c *client) secretMatches(secret string) bool {
	if c.public {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash[:]) == 1
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.postLogout }

// ApplicationType makes public clients native apps: their loopback redirect
// URIs may then use any port (RFC 8252 §7.3).
func (c *client) ApplicationType() op.ApplicationType {
	if c.public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *client) LoginURL(id string) string {
	return loginPath + "?" + url.Values{authRequestParam: {id}}.Encode()
}

// AccessTokenType is JWT so that the gateway can verify bearer tokens
// against the JWKS (RFC 9068) without calling back.
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration      { return c.idTokenTTL }
func (c *client) DevMode() bool                       { return false }
func (c *client) IsScopeAllowed(string) bool          { return false }
func (c *client) ClockSkew() time.Duration            { return 0 }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IDTokenUserinfoClaimsAssertion puts email and profile claims in the ID
// token even though an access token is issued too: the gateway reads them
// from the ID token and never calls userinfo.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
