package i18n

// The gateway's own error answers (proxy): the HTML error page and the
// detail of problem+json bodies.
func init() {
	add(en, map[string]string{
		"proxy.page.request_id":  "Request id: %s",
		"proxy.page.retry_after": "You can try again in %d second(s).",
		"proxy.error.title":      "Error",
		"proxy.https.use_https":  "Use HTTPS.",

		"proxy.error.api_key_unavailable":      "API keys cannot be checked right now. Try again shortly.",
		"proxy.error.audit_unavailable":        "The service cannot record requests right now. Try again shortly.",
		"proxy.error.audit_write_failed":       "The request could not be recorded, so it is not answered. Try again shortly.",
		"proxy.error.auth_required":            "Authentication is required.",
		"proxy.error.body_malformed":           "The request body is malformed.",
		"proxy.error.body_too_large":           "The request body is too large.",
		"proxy.error.body_unreadable":          "The request body could not be read.",
		"proxy.error.credential_invalid":       "The credential is not valid.",
		"proxy.error.forbidden":                "You are not allowed to do this.",
		"proxy.error.form_refused":             "Encoded form bodies are not accepted here.",
		"proxy.error.header_repeated":          "The header %s must not be repeated.",
		"proxy.error.host_invalid":             "The Host header is invalid.",
		"proxy.error.identity_unpassable":      "Your identity cannot be passed to the application. Contact your administrator.",
		"proxy.error.limiter_unavailable":      "The service is temporarily unavailable. Try again shortly.",
		"proxy.error.policy_unavailable":       "The service cannot check this request right now. Try again shortly.",
		"proxy.error.method_not_allowed":       "This method is not allowed here.",
		"proxy.error.method_unsupported":       "This method is not supported.",
		"proxy.error.network_denied":           "Access from your network is not allowed.",
		"proxy.error.not_found":                "No such resource.",
		"proxy.error.override_invalid":         "The method override is invalid.",
		"proxy.error.override_refused":         "Method overrides are not allowed here.",
		"proxy.error.path_non_ascii":           "The request path is not allowed: non-ASCII characters.",
		"proxy.error.path_refused":             "The request path is not allowed: %s.",
		"proxy.error.rate_limited":             "Too many requests. Try again later.",
		"proxy.error.reserved_header_repeated": "A header that only the gateway may set was repeated.",
		"proxy.error.response_unchecked":       "The service's response could not be checked.",
		"proxy.error.sign_in_unavailable":      "Sign-in is temporarily unavailable. Try again shortly.",
		"proxy.error.step_up_required":         "A stronger or more recent authentication is required.",
		"proxy.error.step_up_unsupported":      "This action needs a stronger sign-in, which this client cannot give.",
		"proxy.error.token_unavailable":        "Access tokens cannot be checked right now. Try again shortly.",
		"proxy.error.too_many_failures":        "Too many refused credentials from this address. Try again later.",
		"proxy.error.upgrade_refused":          "This protocol upgrade is not allowed.",
		"proxy.error.upstream_timeout":         "The service did not answer in time.",
		"proxy.error.upstream_unavailable":     "The service is unavailable.",
	})
}
