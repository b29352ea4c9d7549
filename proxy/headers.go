package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// normName folds a header name the way lenient backends do before comparing
// it (CGI and many frameworks treat -, _ and . alike and ignore case), so a
// client cannot slip X_CRM_User past a filter that only knows X-CRM-User.
func normName(k string) string {
	var buf [64]byte
	return string(foldName(buf[:0], k))
}

// foldName appends the folded form of k to dst. Callers on the request
// path fold into a stack buffer and look the result up with
// m[string(b)], which does not allocate.
func foldName(dst []byte, k string) []byte {
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
}

// spoofable are client headers that carry client addresses, hosts, schemes or
// alternative URLs. Some backends believe them (X-Original-URL and
// X-Rewrite-URL even override the path on IIS and Symfony), so the gateway
// never forwards client copies; it sets the ones it owns itself.
var spoofable = []string{
	"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
	"x-forwarded-port", "x-forwarded-server", "x-forwarded-prefix", "x-forwarded-scheme",
	"x-forwarded-ssl", "x-forwarded-uri", "x-forwarded-path", "x-forwarded-client-cert",
	"x-original-forwarded-for", "x-real-ip", "x-client-ip", "true-client-ip",
	"cf-connecting-ip", "fastly-client-ip", "x-cluster-client-ip", "x-proxyuser-ip",
	"x-original-url", "x-rewrite-url", "x-original-uri", "x-original-host", "x-host",
	"x-http-host-override", "x-url-scheme", "front-end-https", "x-arr-ssl",
	"x-envoy-external-address", "x-envoy-original-path", "client-ip",
	// httpoxy (CVE-2016-5385): CGI turns it into HTTP_PROXY, which many
	// HTTP clients take as their outbound proxy.
	"proxy",
}

// isForwardedFamily reports the X-Forwarded-* family, all of which some
// proxy or framework believes (oauth2-proxy style X-Forwarded-User and
// X-Forwarded-Email carry identities): none comes from clients.
func isForwardedFamily(n []byte) bool {
	return len(n) > len("x-forwarded-") && string(n[:len("x-forwarded-")]) == "x-forwarded-"
}

// methodOverrideHeaders are the headers frameworks read to change the method.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// securityHeaders is the compiled SecurityHeadersConfig: header values as
// ready-made slices, set into response headers without allocating. The
// slices are shared and never modified in place (their length equals
// their capacity, so an Add elsewhere copies).
type securityHeaders struct {
	hsts, csp, frame, referrer []string
}

var (
	nosniff    = []string{"nosniff"}
	noStore    = []string{"no-store"}
	varyCreds  = "Cookie, Authorization"
	varyCredsS = []string{varyCreds}
)

func one(v string) []string {
	if v == "" {
		return nil
	}
	return []string{v}
}

func newSecurityHeaders(c SecurityHeadersConfig) securityHeaders {
	var s securityHeaders
	if c.HSTSMaxAge > 0 {
		v := "max-age=" + strconv.FormatInt(int64(c.HSTSMaxAge/time.Second), 10)
		if c.HSTSIncludeSubdomains {
			v += "; includeSubDomains"
		}
		if c.HSTSPreload {
			v += "; preload"
		}
		s.hsts = one(v)
	}
	if c.ContentSecurityPolicy != "-" {
		s.csp = one(c.ContentSecurityPolicy)
	}
	if c.FrameOptions != "-" {
		s.frame = one(strings.ToUpper(c.FrameOptions))
	}
	if c.ReferrerPolicy != "-" {
		s.referrer = one(c.ReferrerPolicy)
	}
	return s
}

// apply sets the security headers on h. HSTS and nosniff are the gateway's
// and always set; CSP, frame and referrer policies are added only when the
// upstream did not send its own, so its stricter or page-specific choices
// survive. Keys are written in canonical form directly.
func (s securityHeaders) apply(h http.Header) {
	if s.hsts != nil {
		h["Strict-Transport-Security"] = s.hsts
	}
	h["X-Content-Type-Options"] = nosniff
	if s.csp != nil && len(h["Content-Security-Policy"]) == 0 {
		h["Content-Security-Policy"] = s.csp
	}
	if s.frame != nil && len(h["X-Frame-Options"]) == 0 {
		h["X-Frame-Options"] = s.frame
	}
	if s.referrer != nil && len(h["Referrer-Policy"]) == 0 {
		h["Referrer-Policy"] = s.referrer
	}
}

// merge reconciles the security headers already set on the client
// response (out) with the upstream's (up), before ReverseProxy copies up
// into out: the gateway's HSTS and nosniff win, so the upstream's copies
// are dropped; the upstream's own CSP, frame and referrer policies win over
// the defaults.
func (s securityHeaders) merge(out, up http.Header) {
	delete(up, "Strict-Transport-Security")
	delete(up, "X-Content-Type-Options")
	for _, k := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"} {
		switch v := up[k]; {
		case len(v) == 0:
		case strings.TrimSpace(strings.Join(v, "")) == "":
			// An empty policy would switch the protection off.
			delete(up, k)
		default:
			delete(out, k)
		}
	}
}

// presetCache sets the route's cache headers on the client response before
// forwarding. Responses of a gateway that authenticates must not be stored
// by shared caches and must vary by the credentials that produced them.
func presetCache(out http.Header, mode string) {
	switch mode {
	case "upstream":
		return
	case "no-store":
		out["Cache-Control"] = noStore
	}
	// An upstream's own Vary is added as a second field line, which
	// RFC 9110 §5.3 makes equivalent to one combined list.
	out["Vary"] = varyCredsS
}

// mergeCache drops or rewrites the upstream's caching headers by the
// route's cache mode (see presetCache).
func mergeCache(out, up http.Header, mode string) {
	switch mode {
	case "no-store":
		delete(up, "Cache-Control")
		delete(up, "Expires")
	case "private":
		cc := strings.Join(up["Cache-Control"], ", ")
		if strings.Contains(strings.ToLower(cc), "no-store") {
			return
		}
		keep := []string{"private"}
		for _, d := range strings.Split(cc, ",") {
			d = strings.TrimSpace(d)
			ld := strings.ToLower(d)
			if d == "" || ld == "public" || ld == "private" || strings.HasPrefix(ld, "s-maxage") {
				continue
			}
			keep = append(keep, d)
		}
		up["Cache-Control"] = []string{strings.Join(keep, ", ")}
	}
}

// stripCookies removes the gateway's own cookies from a Cookie header value,
// keeping the others byte for byte. prefixes are lower case.
func stripCookies(v string, prefixes []string) string {
	parts := strings.Split(v, ";")
	out := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if isGatewayCookie(name, prefixes) || strings.TrimSpace(p) == "" {
			continue
		}
		out = append(out, strings.TrimSpace(p))
	}
	return strings.Join(out, "; ")
}

func isGatewayCookie(name string, prefixes []string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	n = strings.TrimPrefix(n, "__host-")
	n = strings.TrimPrefix(n, "__secure-")
	for _, p := range prefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}
