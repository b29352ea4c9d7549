package fingerprint

import "strings"

// maxUserAgentScan bounds how much of a User-Agent is read. Browsers send
// 100 to 300 bytes; a longer value is either padded or not a browser's, and
// its family is looked for only in the first maxUserAgentScan bytes.
const maxUserAgentScan = 512

// maxMajorDigits bounds the major version that is kept.
const maxMajorDigits = 5

// UserAgentOther is what UserAgent returns for a client it does not know.
const UserAgentOther = "other"

// uaRule finds a family by a product token ("Chrome/130.0…").
type uaRule struct {
	token  string // product name and slash, as browsers send it
	family string
}

// browserRules are tried in order. Browsers built on Chromium also send
// "Chrome/" and "Safari/", and Chrome sends "Safari/", so the more specific
// tokens come first; Safari is recognised separately, by its "Version/"
// token next to "Safari/".
var browserRules = [...]uaRule{
	{"Edg/", "edge"},    // Edge on desktop
	{"EdgA/", "edge"},   // Edge on Android
	{"EdgiOS/", "edge"}, // Edge on iOS
	{"Edge/", "edge"},   // EdgeHTML Edge (18 and earlier)
	{"OPR/", "opera"},
	{"SamsungBrowser/", "samsung"},
	{"Chrome/", "chrome"},
	{"CriOS/", "chrome"}, // Chrome on iOS
	{"Firefox/", "firefox"},
	{"FxiOS/", "firefox"}, // Firefox on iOS
}

// toolRules are command-line clients and libraries, recognised by their
// product token at the start of the value (compared case-insensitively).
var toolRules = [...]uaRule{
	{"curl/", "curl"},
	{"Go-http-client/", "go-http-client"},
	{"Wget/", "wget"},
	{"python-requests/", "python-requests"},
	{"okhttp/", "okhttp"},
}

// UserAgent normalises a User-Agent header to the client's family and
// major version: "chrome/130", "firefox/128", "safari/17", "edge/130",
// "opera/114", "samsung/26", "curl/8", "go-http-client/1", "wget/1",
// "python-requests/2", "okhttp/4"; the family alone when it carries no
// version; UserAgentOther for anything else, including headless and
// automation browsers that do not claim a known token. Only the first
// 512 bytes are read, and the result is always one of these short forms,
// whatever the input.
func UserAgent(ua string) string {
	if len(ua) > maxUserAgentScan {
		ua = ua[:maxUserAgentScan]
	}
	for _, r := range toolRules {
		if len(ua) >= len(r.token) && strings.EqualFold(ua[:len(r.token)], r.token) {
			return withMajor(r.family, ua[len(r.token):])
		}
	}
	for _, r := range browserRules {
		if rest, ok := afterToken(ua, r.token); ok {
			return withMajor(r.family, rest)
		}
	}
	if _, ok := afterToken(ua, "Safari/"); ok {
		if rest, ok := afterToken(ua, "Version/"); ok {
			return withMajor("safari", rest)
		}
	}
	return UserAgentOther
}

// afterToken returns what follows the first occurrence of token in ua that
// starts a product: at the start, or after a character that is not a letter
// or digit (so "HeadlessChrome/" is not "Chrome/").
func afterToken(ua, token string) (string, bool) {
	for off := 0; ; {
		i := strings.Index(ua[off:], token)
		if i < 0 {
			return "", false
		}
		i += off
		if i == 0 || !isAlnum(ua[i-1]) {
			return ua[i+len(token):], true
		}
		off = i + len(token)
	}
}

// withMajor returns family/major, major being the leading digits of
// version (at most maxMajorDigits), or family alone when there are none.
func withMajor(family, version string) string {
	n := 0
	for n < len(version) && n < maxMajorDigits && '0' <= version[n] && version[n] <= '9' {
		n++
	}
	if n == 0 {
		return family
	}
	return family + "/" + version[:n]
}
