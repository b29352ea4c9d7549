package i18n

func init() {
	add(zhHans, map[string]string{
		"idp.page.product":          "crmgate 开发用身份提供方",
		"idp.page.warning":          "这是 crmgate 演示用的开发身份提供方，请勿用于生产环境。",
		"idp.page.sign_in_title":    "登录",
		"idp.page.lead":             "登录以继续使用 %s。",
		"idp.page.username":         "用户名",
		"idp.page.password":         "密码",
		"idp.page.sign_in_button":   "登录",
		"idp.page.otp_title":        "第二重验证",
		"idp.page.otp_lead":         "请输入身份验证器应用为 %s 生成的 6 位验证码。",
		"idp.page.code":             "验证码",
		"idp.page.verify_button":    "验证",
		"idp.page.problem_title":    "登录出现问题",
		"idp.page.signed_out_title": "已退出登录",
		"idp.page.signed_out":       "您已退出 crmgate 开发用身份提供方。",
		"idp.error.wrong_password":  "用户名或密码错误。",
		"idp.error.wrong_code":      "验证码错误。",
		"idp.error.code_reused":     "此验证码已被使用，请等待下一个验证码。",
		"idp.error.locked":          "失败次数过多，此账户已被锁定；请在 %d 分钟后再试。",
		"idp.error.request_expired": "此登录请求无效或已过期。请从应用重新开始。",
		"idp.error.form_unreadable": "无法读取表单。",
		"idp.error.form_expired":    "此表单已过期，或并非从此浏览器提交。请刷新登录页面。",
		"idp.error.other_browser":   "此次登录已在另一个浏览器中完成。请从应用重新开始。",
		"idp.error.internal":        "出现了问题。请从应用重新开始。",
	})
}
