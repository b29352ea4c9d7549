package i18n

func init() {
	add(zhHans, map[string]string{
		"http.status.400": "请求无效",
		"http.status.401": "未经身份验证",
		"http.status.403": "禁止访问",
		"http.status.404": "未找到",
		"http.status.405": "不允许的请求方法",
		"http.status.408": "请求超时",
		"http.status.413": "请求内容过大",
		"http.status.414": "请求地址过长",
		"http.status.422": "无法处理的请求",
		"http.status.429": "请求过多",
		"http.status.431": "请求头过大",
		"http.status.500": "服务器内部错误",
		"http.status.502": "网关错误",
		"http.status.503": "服务不可用",
		"http.status.504": "网关超时",
	})
}
