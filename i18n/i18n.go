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

// Negotiate returns the language to answer in for an Accept-Language
// value: English unless the client prefers Simplified Chinese (zh,
// zh-CN, zh-SG, zh-Hans; Traditional Chinese is not offered, so zh-TW and
// zh-Hant fall back to English).
func Negotiate(acceptLanguage string) string {
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
