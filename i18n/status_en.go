package i18n

// HTTP reason phrases, for the titles of pages a person reads (Status).
// The English ones are net/http's StatusText, word for word.
func init() {
	add(en, map[string]string{
		"http.status.400": "Bad Request",
		"http.status.401": "Unauthorized",
		"http.status.403": "Forbidden",
		"http.status.404": "Not Found",
		"http.status.405": "Method Not Allowed",
		"http.status.408": "Request Timeout",
		"http.status.413": "Request Entity Too Large",
		"http.status.414": "Request URI Too Long",
		"http.status.422": "Unprocessable Entity",
		"http.status.429": "Too Many Requests",
		"http.status.431": "Request Header Fields Too Large",
		"http.status.500": "Internal Server Error",
		"http.status.502": "Bad Gateway",
		"http.status.503": "Service Unavailable",
		"http.status.504": "Gateway Timeout",
	})
}
