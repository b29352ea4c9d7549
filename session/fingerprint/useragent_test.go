package fingerprint

import (
	"strings"
	"testing"
)

func TestUserAgent(t *testing.T) {
	for _, tc := range []struct {
		name, ua, want string
	}{
		{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "chrome/130"},
		{"chrome macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "chrome/131"},
		{"chrome android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/143.0.0.0 Mobile Safari/537.36", "chrome/143"},
		{"chrome ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1", "chrome/130"},
		{"android webview", "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.58 Mobile Safari/537.36", "chrome/130"},
		{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox/128"},
		{"firefox linux", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "firefox/133"},
		{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0", "firefox/132"},
		{"firefox ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15", "firefox/132"},
		{"safari macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", "safari/17"},
		{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "safari/18"},
		{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "safari/17"},
		{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "edge/130"},
		{"edge android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36 EdgA/130.0.0.0", "edge/130"},
		{"edge ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/130.2849.80 Mobile/15E148 Safari/605.1.15", "edge/130"},
		{"edge legacy", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582", "edge/18"},
		{"opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 OPR/115.0.0.0", "opera/115"},
		{"samsung", "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", "samsung/26"},
		{"curl", "curl/8.5.0", "curl/8"},
		{"curl upper-case", "CURL/7.81.0", "curl/7"},
		{"go http/1.1", "Go-http-client/1.1", "go-http-client/1"},
		{"go http/2", "Go-http-client/2.0", "go-http-client/2"},
		{"wget", "Wget/1.21.4", "wget/1"},
		{"python requests", "python-requests/2.32.3", "python-requests/2"},
		{"okhttp", "okhttp/4.12.0", "okhttp/4"},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/130.0.0.0 Safari/537.36", "other"},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "other"},
		{"empty", "", "other"},
		{"mozilla only", "Mozilla/5.0", "other"},
		{"binary", "\x00\xff\xfe", "other"},
		{"token without version", "Chrome/", "chrome"},
		{"token with letters", "Chrome/abc", "chrome"},
		{"token inside a word", "XChrome/130", "other"},
		{"long version", "Firefox/1234567890", "firefox/12345"},
		{"safari token without Version", "AppleWebKit/605.1.15 Safari/605.1.15", "other"},
		{"token at the end", "Mozilla/5.0 Chrome/", "chrome"},
		// A family past the scanned prefix is not looked for.
		{"padded", strings.Repeat("A", 600) + " Chrome/130.0", "other"},
		{"padded tool", "curl/8.0" + strings.Repeat(" ", 10000), "curl/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UserAgent(tc.ua); got != tc.want {
				t.Errorf("UserAgent(%.80q) = %q, want %q", tc.ua, got, tc.want)
			}
		})
	}
}
