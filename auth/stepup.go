package auth

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/crmgate/crmgate/auth/stepup"
	"github.com/crmgate/crmgate/i18n"
)

// StepUp answers a request of the signed-in user subject that the policy
// allows only after a stronger or fresher authentication (req), which the
// session does not show:
//
//   - a browser navigating (Accept: text/html) is sent to the provider
//     with acr_values, max_age and prompt=login; after a successful
//     step-up it comes back to the page it asked for when the method is
//     safe (GET, HEAD), and otherwise to a page that lets the user repeat
//     the action: a request body is never replayed;
//   - any other client (a script) gets 401 with an
//     application/problem+json body whose step_up_url, opened in the
//     browser, starts the same step-up.
//
// The request is an auth.step_up.request event.
func (rp *RP) StepUp(w http.ResponseWriter, r *http.Request, subject string, req stepup.Required) {
	rp.emit(r, Event{Type: EventStepUpRequest, Subject: subject})
	ret := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		ret += "?" + r.URL.RawQuery
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Back to where the action was started, to start it again.
		ret = rp.stepUpDonePath() + "?back=" + url.QueryEscape(refererPath(r, rp.origin))
	}
	if acceptsHTML(r) {
		rp.Login(w, r, ret, withStepUp(req.ACR, subject), WithMaxAge(req.MaxAge))
		return
	}
	link := rp.stepUpLink(req, ret)
	lang := i18n.For(r)
	h := w.Header()
	i18n.SetHeaders(h, lang)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(struct {
		problem
		ACR       string `json:"acr_values"`
		MaxAge    int64  `json:"max_age,omitempty"`
		StepUpURL string `json:"step_up_url"`
	}{
		problem: problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
			Detail: i18n.T(lang, "auth.problem.step_up")},
		ACR: req.ACR, MaxAge: int64(req.MaxAge / time.Second), StepUpURL: link,
	})
}

// stepUpLink is the same-origin URL that starts a step-up to req and comes
// back to ret.
func (rp *RP) stepUpLink(req stepup.Required, ret string) string {
	q := url.Values{}
	q.Set("acr", req.ACR)
	if req.MaxAge > 0 {
		q.Set("max_age", strconv.FormatInt(int64(req.MaxAge/time.Second), 10))
	}
	q.Set("return", ret)
	return rp.cfg.StepUpPath + "?" + q.Encode()
}

func (rp *RP) stepUpDonePath() string { return rp.cfg.StepUpPath + "/done" }

// stepUpStart serves GET StepUpPath?acr=&max_age=&return=: the step-up a
// script was told to open. It needs a session (without one it is a plain
// sign-in) and a configured level; the return path must be same-origin.
// Starting a step-up grants nothing: the callback checks what the provider
// asserted and the policy decides again.
func (rp *RP) stepUpStart(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	ret, _ := SafeReturn(q.Get("return"))
	acr := q.Get("acr")
	if len(q["acr"]) != 1 || !rp.levels.Known(acr) {
		renderError(w, r, http.StatusBadRequest, "auth.error.step_up_link_invalid")
		return
	}
	req := stepup.Required{ACR: acr}
	if v := q.Get("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || time.Duration(n)*time.Second > stepup.MaxAge {
			renderError(w, r, http.StatusBadRequest, "auth.error.step_up_link_invalid")
			return
		}
		req.MaxAge = time.Duration(n) * time.Second
	}
	sub, _, err := rp.Identify(r)
	if err != nil {
		rp.emit(r, Event{Type: EventStepUpFailure, Reason: ReasonStepUpNoSession})
		rp.Login(w, r, ret)
		return
	}
	rp.emit(r, Event{Type: EventStepUpRequest, Subject: sub.ID})
	rp.Login(w, r, ret, withStepUp(req.ACR, sub.ID), WithMaxAge(req.MaxAge))
}

// stepUpDone is where a step-up started by an unsafe request comes back:
// the action is not replayed; the user goes back and repeats it.
func (rp *RP) stepUpDone(w http.ResponseWriter, r *http.Request) {
	back, _ := SafeReturn(r.URL.Query().Get("back"))
	render(w, r, http.StatusOK, pageData{
		Title:    "auth.page.step_up_done_title",
		Message:  "auth.page.step_up_done",
		Link:     back,
		LinkText: "auth.page.go_back",
	})
}

// stepUpFailed ends a step-up whose callback did not show what was asked:
// the session is left as it was, and the user is told.
func (rp *RP) stepUpFailed(w http.ResponseWriter, r *http.Request, subject, reason string, err error) {
	rp.log.LogAttrs(r.Context(), slog.LevelWarn, "auth: step-up failed", slog.String("reason", reason), slog.String("subject", subject), slog.Any("err", err))
	rp.emit(r, Event{Type: EventStepUpFailure, Subject: subject, Reason: reason})
	renderError(w, r, http.StatusForbidden, "auth.error.step_up_failed")
}

// refererPath is the same-origin path of the page that sent r (its
// Referer), "/" when there is none or it is another origin's.
func refererPath(r *http.Request, origin string) string {
	u, err := url.Parse(r.Referer())
	if err != nil || u.Scheme+"://"+u.Host != origin {
		return "/"
	}
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if safe, ok := SafeReturn(p); ok {
		return safe
	}
	return "/"
}
