package idp

import (
	"context"
	"fmt"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Authentication context classes (acr) the provider asserts; a client asks
// for the second factor with acr_values=mfa.
const (
	// ACRPassword is asserted after a password alone.
	ACRPassword = "pwd"
	// ACRMFA is asserted after a password and a TOTP code.
	ACRMFA = "mfa"
)

// Authentication methods (amr, RFC 8176) the provider asserts.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
)

// Claims the provider adds to the standard ones.
const (
	// ClaimRoles carries User.Roles in ID tokens, access tokens and userinfo.
	ClaimRoles = "roles"
	// ClaimSID is the session id of Back-Channel Logout 1.0 §2.1.
	ClaimSID = "sid"
)

// supportedScopes are the scopes a client may ask for; others are dropped.
var supportedScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// supportedClaims lists the claims in discovery.
var supportedClaims = []string{
	"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash",
	"preferred_username", "name", "email", "email_verified", ClaimRoles, ClaimSID,
}

// setUserinfo fills info for user as scopes allow; roles are always given
// because every crmgate policy needs them.
func setUserinfo(info *oidc.UserInfo, u User, scopes []string) {
	info.Subject = u.Username
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.Username
		info.Name = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = true
	}
	info.AppendClaims(ClaimRoles, rolesOf(u))
}

// rolesOf never returns nil, so that the claim is [] rather than null.
func rolesOf(u User) []string {
	if u.Roles == nil {
		return []string{}
	}
	return slices.Clone(u.Roles)
}

func (s *storage) user(username string) (User, error) {
	u, ok := s.users[username]
	if !ok {
		return User{}, fmt.Errorf("user %q: %w", username, errNotFound)
	}
	return u, nil
}

// SetUserinfoFromScopes is deprecated in the library; SetUserinfoFromRequest
// does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims, its sid, and, for
// a refresh, the acr that the library only copies from authorization
// requests.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, err := s.user(req.GetSubject())
	if err != nil {
		return err
	}
	setUserinfo(info, u, scopes)
	if a, ok := authInfoOf(req); ok {
		if a.sid != "" {
			info.AppendClaims(ClaimSID, a.sid)
		}
		if _, isRefresh := req.(*refreshRequest); isRefresh && a.acr != "" {
			info.AppendClaims("acr", a.acr)
		}
	}
	return nil
}

// SetUserinfoFromToken serves the userinfo endpoint; a revoked or expired
// access token gets nothing.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.liveAccess(tokenID)
	if err != nil {
		return err
	}
	if t.subject != subject {
		return fmt.Errorf("access token subject mismatch")
	}
	u, err := s.user(t.subject)
	if err != nil {
		return err
	}
	setUserinfo(info, u, t.scopes)
	return nil
}

// SetIntrospectionFromToken answers only the client the token was issued to.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.liveAccess(tokenID)
	if err != nil {
		return err
	}
	if t.subject != subject || t.clientID != clientID {
		return fmt.Errorf("access token not issued to client %q", clientID)
	}
	u, err := s.user(t.subject)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	setUserinfo(info, u, t.scopes)
	resp.SetUserInfo(info)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

// GetPrivateClaimsFromScopes is the library's fallback for JWT access tokens.
func (s *storage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	u, err := s.user(userID)
	if err != nil {
		return nil, err
	}
	return map[string]any{ClaimRoles: rolesOf(u)}, nil
}

// GetPrivateClaimsFromRequest adds roles and the authentication (acr, amr,
// auth_time, RFC 9068 §2.2.1) to JWT access tokens, so that the gateway can
// demand a step-up for API calls (RFC 9470) from the token alone.
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	u, err := s.user(req.GetSubject())
	if err != nil {
		return nil, err
	}
	claims := map[string]any{ClaimRoles: rolesOf(u)}
	if a, ok := authInfoOf(req); ok {
		claims["acr"] = a.acr
		claims["amr"] = a.amr
		claims["auth_time"] = a.authTime.Unix()
	}
	return claims, nil
}
