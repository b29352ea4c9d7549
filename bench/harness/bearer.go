package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The machine client of the JWT workload: an access token the
// development IdP's address vouches for (its JWKS is served there, see
// bench/cmd/idp -jwks), for the API's audience, with the support role,
// like a client-credentials token of an integration.
const (
	bearerPath     = "/bench"          // issuer = the IdP's URL and this path
	bearerJWKSPath = "/bench/jwks"     // where the IdP serves the key set
	bearerAudience = "crm-api"         // bearer.issuers[].audience
	bearerKID      = "bench-es256"     // the token's kid
	bearerSubject  = "crm-sync-client" // the calling client
	bearerRole     = "support"
)

// bearerKeys makes the ES256 key of the machine client's tokens and
// writes its public key set to a file the IdP serves.
func bearerKeys(e *env) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: bearerKID, Algorithm: string(jose.ES256), Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		return err
	}
	e.bearerKey = k
	e.bearerJWKS = filepath.Join(e.work, "bearer-jwks.json")
	return os.WriteFile(e.bearerJWKS, b, 0o644)
}

// bearerToken is an access token of the machine client, valid for d, as
// the header line wrk sends.
func bearerToken(e *env, d time.Duration) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), bearerKID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.bearerKey}, opts)
	if err != nil {
		return "", err
	}
	now := time.Now()
	claims, err := json.Marshal(map[string]any{
		"iss": e.idpURL + bearerPath, "aud": bearerAudience, "sub": bearerSubject, "client_id": bearerSubject,
		"scope": "contacts:read", "roles": []string{bearerRole},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(d).Unix(), "jti": randomHex(8),
	})
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(claims)
	if err != nil {
		return "", err
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Authorization: Bearer %s", tok), nil
}

// bearerYAML is the gateway's bearer section accepting those tokens.
func bearerYAML(e *env) string {
	return fmt.Sprintf(`bearer:
  issuers:
    - issuer: %q
      audience: %q
      jwks_url: %q
      algorithms: [ES256]
      ca_file: %q
`, e.idpURL+bearerPath, bearerAudience, e.idpURL+bearerJWKSPath, e.caFile)
}
