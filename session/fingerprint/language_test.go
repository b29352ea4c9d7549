package fingerprint

import (
	"strings"
	"testing"
)

func TestAcceptLanguage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"one region", []string{"en-US,en;q=0.9"}, "en"},
		{"first three", []string{"de-CH,de;q=0.9,en;q=0.8,fr;q=0.7,it;q=0.6"}, "de,en,fr"},
		{"duplicates", []string{"ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"}, "ko,en"},
		{"upper case", []string{"EN-gb, FR"}, "en,fr"},
		{"underscore", []string{"pt_BR"}, "pt"},
		{"wildcard", []string{"*"}, ""},
		{"wildcard skipped", []string{"*;q=0.1, nl"}, "nl"},
		{"empty", nil, ""},
		{"empty value", []string{""}, ""},
		{"spaces and empty items", []string{" fr ; q=0.5 , , zh-Hant-TW"}, "fr,zh"},
		{"digits", []string{"123,en"}, "en"},
		{"too long subtag", []string{"abcdefghi,es"}, "es"},
		{"non-ASCII", []string{"é,ja"}, "ja"},
		{"several header lines", []string{"fr", "en;q=0.5", "de"}, "fr,en,de"},
		{"stops after three", []string{"a,b,c", "d"}, "a,b,c"},
		{"repeated", []string{strings.Repeat("zz-ZZ,", 1000)}, "zz"},
		// A language past the scanned prefix is not looked for.
		{"padded", []string{strings.Repeat(",", 300) + "en"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AcceptLanguage(tc.values...); got != tc.want {
				t.Errorf("AcceptLanguage(%.80q) = %q, want %q", tc.values, got, tc.want)
			}
		})
	}
}
