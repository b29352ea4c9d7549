package i18n

import (
	"regexp"
	"slices"
	"testing"
)

func TestNegotiate(t *testing.T) {
	for in, want := range map[string]string{
		"":                        English,
		"en-US,en;q=0.9":          English,
		"zh-CN,zh;q=0.9,en;q=0.8": SimplifiedChinese,
		"zh":                      SimplifiedChinese,
		"zh-Hans":                 SimplifiedChinese,
		"zh-SG":                   SimplifiedChinese,
		"zh-TW":                   English,
		"zh-Hant":                 English,
		"en;q=0.5,zh;q=0.9":       SimplifiedChinese,
		"fr-FR,fr;q=0.9":          English,
		"de,zh;q=0.1":             SimplifiedChinese,
		"*":                       English,
		"\x00garbage;;q=zz,,,":    English,
		"zh;q=0, en":              English,
	} {
		if got := Negotiate(in); got != want {
			t.Errorf("Negotiate(%q) = %q, want %q", in, got, want)
		}
	}
}

var verb = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// Every language has every English message, with the same format verbs
// in the same order, and no message English lacks.
func TestCatalogues(t *testing.T) {
	for lang, msgs := range catalogues {
		for id, text := range en {
			tr, ok := msgs[id]
			if !ok {
				t.Errorf("%s lacks %q", lang, id)
				continue
			}
			if a, b := verb.FindAllString(text, -1), verb.FindAllString(tr, -1); !slices.Equal(a, b) {
				t.Errorf("%s %q: verbs %v, English has %v", lang, id, b, a)
			}
		}
		for id := range msgs {
			if _, ok := en[id]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, id)
			}
		}
	}
}

func TestT(t *testing.T) {
	if got := T(SimplifiedChinese, "lang.name"); got != "简体中文" {
		t.Errorf("T(zh-Hans) = %q", got)
	}
	if got := T("xx", "lang.name"); got != "English" {
		t.Errorf("unknown language = %q", got)
	}
	if got := T(English, "no.such.id"); got != "no.such.id" {
		t.Errorf("unknown id = %q", got)
	}
}
