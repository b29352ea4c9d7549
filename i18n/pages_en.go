package i18n

// The gateway's sign-in pages (auth): errors during sign-in, sign-out,
// step-up, and the problem details of the 401s scripts get.
func init() {
	add(en, map[string]string{
		"auth.page.request_id":              "Request id: %s",
		"auth.page.go_back":                 "Go back",
		"auth.page.not_signed_in":           "You are not signed in.",
		"auth.page.sign_out_button":         "Sign out",
		"auth.page.sign_out_question":       "Sign out of this application and your organisation's sign-in?",
		"auth.page.sign_out_title":          "Sign out",
		"auth.page.signed_out_title":        "Signed out",
		"auth.page.step_up_done":            "You have confirmed your identity. For your safety the action you started was not carried out automatically: go back and do it again.",
		"auth.page.step_up_done_title":      "Verification complete",
		"auth.page.unavailable":             "The identity provider cannot be reached right now, so new sign-ins are not possible. If you are already signed in, you can keep working. Try again in a minute.",
		"auth.page.unavailable_title":       "Sign-in temporarily unavailable",
		"auth.error.login_failed":           "Sign-in could not be completed. Go back to the application and try again.",
		"auth.error.login_refused":          "Sign-in was refused by the identity provider.",
		"auth.error.login_unavailable":      "Sign-in is temporarily unavailable. Try again in a minute.",
		"auth.error.logout_cross_site":      "This sign-out request did not come from this site.",
		"auth.error.logout_form_expired":    "This sign-out form expired. Reload the page and try again.",
		"auth.error.logout_form_unreadable": "The sign-out form could not be read.",
		"auth.error.logout_unavailable":     "Sign-out is temporarily unavailable. Try again in a minute.",
		"auth.error.not_configured":         "Sign-in is not configured.",
		"auth.error.step_up_failed":         "The additional verification did not succeed, so the action was not allowed. Your session is unchanged; go back and try again.",
		"auth.error.step_up_link_invalid":   "This verification link is not valid.",
		"auth.error.use_get":                "Use GET.",
		"auth.problem.auth_required":        "Authentication is required.",
		"auth.problem.step_up":              "This action needs a fresh, stronger sign-in. Open step_up_url in the browser, then repeat the request.",
	})
}
