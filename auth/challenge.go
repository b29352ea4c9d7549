package auth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmgate/crmgate/i18n"
)

// Challenge answers a request that has no valid session. A browser
// navigating (GET or HEAD accepting text/html) is sent to login, to come
// back to the page it asked for; any other client gets 401 with
// WWW-Authenticate: Bearer realm="crmgate" (RFC 6750 §3) and an
// application/problem+json body (RFC 9457), since a redirect to a login
// page means nothing to a script or an XHR.
func (rp *RP) Challenge(w http.ResponseWriter, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) {
		ret := r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			ret += "?" + r.URL.RawQuery
		}
		rp.Login(w, r, ret)
		return
	}
	lang := i18n.For(r)
	h := w.Header()
	i18n.SetHeaders(h, lang)
	h.Set("WWW-Authenticate", `Bearer realm="crmgate"`)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(problem{
		Type:   "about:blank",
		Title:  "Unauthorized",
		Status: http.StatusUnauthorized,
		Detail: i18n.T(lang, "auth.problem.auth_required"),
	})
}

// problem is an RFC 9457 problem details object. Detail is in the
// request's language; Title stays the English reason phrase, which
// scripts match on (RFC 9457 §4.2.1 allows either).
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// acceptsHTML reports whether the Accept header names text/html with a
// non-zero weight: what browsers send for navigations and scripts do not.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			media, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(media), "text/html") {
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "q") {
					if q, err := strconv.ParseFloat(val, 64); err != nil || q <= 0 {
						return false
					}
				}
			}
			return true
		}
	}
	return false
}
