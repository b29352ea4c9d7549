package i18n

func init() {
	add(zhHans, map[string]string{
		"auth.page.request_id":              "请求编号：%s",
		"auth.page.go_back":                 "返回",
		"auth.page.not_signed_in":           "您尚未登录。",
		"auth.page.sign_out_button":         "退出登录",
		"auth.page.sign_out_question":       "要退出此应用并退出贵组织的统一登录吗？",
		"auth.page.sign_out_title":          "退出登录",
		"auth.page.signed_out_title":        "已退出登录",
		"auth.page.step_up_done":            "您已确认身份。为了您的安全，您刚才发起的操作没有自动执行：请返回并重新操作一次。",
		"auth.page.step_up_done_title":      "验证完成",
		"auth.page.unavailable":             "目前无法连接身份提供方，因此暂时无法进行新的登录。如果您已经登录，可以继续使用。请一分钟后再试。",
		"auth.page.unavailable_title":       "登录暂时不可用",
		"auth.error.login_failed":           "无法完成登录。请返回应用后重试。",
		"auth.error.login_refused":          "身份提供方拒绝了此次登录。",
		"auth.error.login_unavailable":      "登录暂时不可用。请一分钟后再试。",
		"auth.error.logout_cross_site":      "此退出登录请求并非来自本网站。",
		"auth.error.logout_form_expired":    "此退出登录表单已过期。请刷新页面后重试。",
		"auth.error.logout_form_unreadable": "无法读取退出登录表单。",
		"auth.error.logout_unavailable":     "退出登录暂时不可用。请一分钟后再试。",
		"auth.error.not_configured":         "尚未配置登录。",
		"auth.error.step_up_failed":         "附加验证未通过，因此该操作未被允许。您的会话保持不变；请返回后重试。",
		"auth.error.step_up_link_invalid":   "此验证链接无效。",
		"auth.error.use_get":                "请使用 GET 请求。",
		"auth.problem.auth_required":        "需要进行身份验证。",
		"auth.problem.step_up":              "此操作需要重新进行更高强度的登录。请在浏览器中打开 step_up_url，然后重新发送请求。",
	})
}
