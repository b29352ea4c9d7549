package i18n

// The demo's development identity provider (demo/idp): its sign-in and
// second-factor forms and their errors.
func init() {
	add(en, map[string]string{
		"idp.page.product":          "crmgate dev IdP",
		"idp.page.warning":          "Development identity provider for the crmgate demo. Not for production.",
		"idp.page.sign_in_title":    "Sign in",
		"idp.page.lead":             "Sign in to continue to %s.",
		"idp.page.username":         "Username",
		"idp.page.password":         "Password",
		"idp.page.sign_in_button":   "Sign in",
		"idp.page.otp_title":        "Second factor",
		"idp.page.otp_lead":         "Enter the 6-digit code from your authenticator app for %s.",
		"idp.page.code":             "Code",
		"idp.page.verify_button":    "Verify",
		"idp.page.problem_title":    "Sign-in problem",
		"idp.page.signed_out_title": "Signed out",
		"idp.page.signed_out":       "You are signed out of the crmgate dev IdP.",
		"idp.error.wrong_password":  "Wrong username or password.",
		"idp.error.wrong_code":      "Wrong code.",
		"idp.error.code_reused":     "This code was already used. Wait for the next one.",
		"idp.error.locked":          "Too many failed attempts. This account is locked; try again in %d minute(s).",
		"idp.error.request_expired": "This sign-in request is unknown or has expired. Start again from the application.",
		"idp.error.form_unreadable": "The form could not be read.",
		"idp.error.form_expired":    "This form expired or was not sent from this browser. Reload the sign-in page.",
		"idp.error.other_browser":   "This sign-in was completed in another browser. Start again from the application.",
		"idp.error.internal":        "Something went wrong. Start again from the application.",
	})
}
