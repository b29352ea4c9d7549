// Package i18n holds every text crmgate shows a person — sign-in and
// step-up pages, error pages, the admin dashboard — in one catalogue per
// language, and picks the language from the request's Accept-Language.
//
// English ("en") is complete and the fallback; Simplified Chinese
// ("zh-Hans") is the second language. Each area keeps its messages in a
// file per language (pages_en.go, pages_zh.go, …) that adds them to the
// language's catalogue from init. To add a language, add its files with
// the same message ids and list it in catalogues; TestCatalogues checks
// that every language has every id with the same format verbs.
package i18n

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/text/language"
)

// Languages, as BCP 47 tags.
const (
	English           = "en"
	SimplifiedChinese = "zh-Hans"
)

// catalogues maps a language to its messages: message id → text, a
// fmt format when the message takes arguments.
var catalogues = map[string]map[string]string{
	English:           en,
	SimplifiedChinese: zhHans,
}

// supported are the languages in the matcher's order; the first is the
// default.
var supported = []language.Tag{language.English, language.SimplifiedChinese}

var matcher = language.NewMatcher(supported)

// MaxAcceptLanguage is how much of an Accept-Language value Negotiate
// reads. Browsers send a few dozen bytes; the cap keeps the work per
// request bounded whatever a client sends (a header may be up to the
// server's header limit, a megabyte).
const MaxAcceptLanguage = 256

// Negotiate returns the language to answer in for an Accept-Language
// value: English unless the client prefers Simplified Chinese (zh,
// zh-CN, zh-SG, zh-Hans; Traditional Chinese is not offered, so zh-TW and
// zh-Hant fall back to English). Only the first MaxAcceptLanguage bytes
// are read, cut back to the last whole entry; a value that does not parse
// is English.
func Negotiate(acceptLanguage string) string {
	if len(acceptLanguage) > MaxAcceptLanguage {
		acceptLanguage = acceptLanguage[:MaxAcceptLanguage]
		// Keep whole entries: a cut tag ("zh-Ha") would fail the whole
		// list or, worse, read as another language.
		i := strings.LastIndexByte(acceptLanguage, ',')
		if i < 0 {
			return English
		}
		acceptLanguage = acceptLanguage[:i]
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return English
	}
	_, i, conf := matcher.Match(tags...)
	if conf < language.High {
		// A weak match (zh-TW to zh-Hans, say) is not what was asked.
		return English
	}
	if i == 1 {
		return SimplifiedChinese
	}
	return English
}

// For is Negotiate of a request's Accept-Language.
func For(r *http.Request) string {
	if r == nil {
		return English
	}
	return Negotiate(r.Header.Get("Accept-Language"))
}

// SetHeaders marks a response whose text is in lang: Content-Language
// (RFC 9110 §8.5), and Vary: Accept-Language so that no cache hands one
// person's language to another. Vary is added once, next to any that is
// already there.
func SetHeaders(h http.Header, lang string) {
	h.Set("Content-Language", lang)
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, "Accept-Language") {
				return
			}
		}
	}
	h.Add("Vary", "Accept-Language")
}

// Status is the reason phrase of an HTTP status in lang, for pages a
// person reads: the message "http.status.<code>", else Go's English
// http.StatusText, "" for a code without one.
func Status(lang string, code int) string {
	id := "http.status." + strconv.Itoa(code)
	if msg, ok := catalogues[lang][id]; ok {
		return msg
	}
	if msg, ok := en[id]; ok {
		return msg
	}
	return http.StatusText(code)
}

// T returns message id in lang, formatted with args when given. A
// language or message that is missing falls back to English; an id that
// English lacks is returned as it is, so a missing text shows, never
// panics.
func T(lang, id string, args ...any) string {
	msg, ok := catalogues[lang][id]
	if !ok {
		if msg, ok = en[id]; !ok {
			return id
		}
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// Messages returns every message of lang (English for an unknown one),
// for pages that hand their texts to script.
func Messages(lang string) map[string]string {
	if m, ok := catalogues[lang]; ok {
		return m
	}
	return en
}

// add puts an area's messages (sign-in pages, error pages, the dashboard;
// one file per area and language, from init) into a catalogue. An id
// given twice is a programming error.
func add(catalogue, msgs map[string]string) {
	for id, text := range msgs {
		if _, dup := catalogue[id]; dup {
			panic("i18n: message " + id + " defined twice")
		}
		catalogue[id] = text
	}
}
