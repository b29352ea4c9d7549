package bearer

import (
	"net/http"

	"github.com/crmgate/crmgate/auth"
)

// HTTPClient returns the client the verifier reaches this issuer with
// when New is given none (see auth.NewHTTPClient).
func (c IssuerConfig) HTTPClient() (*http.Client, error) {
	return auth.NewHTTPClient(c.CAFile, fetchTimeout)
}
