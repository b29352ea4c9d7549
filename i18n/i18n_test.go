package i18n

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

// Hostile Accept-Language values: huge, malformed, thousands of entries.
// Each is English or the language of its first MaxAcceptLanguage bytes,
// and never panics.
func TestNegotiateHostile(t *testing.T) {
	long := strings.Repeat("en;q=0.1,", 200_000) // 1.8 MB
	tests := []struct {
		name, in, want string
	}{
		{"one megabyte tag", strings.Repeat("a", 1<<20), English},
		{"a megabyte after zh", "zh-CN," + strings.Repeat("x", 1<<20), SimplifiedChinese},
		{"many q-values after zh", "zh-CN," + long, SimplifiedChinese},
		{"zh beyond the cap", long + "zh-CN;q=1", English},
		{"zh cut by the cap", strings.Repeat("fr;q=0.1,", 28) + "zh-Hans", English},
		{"zh just inside the cap", strings.Repeat("fr;q=0.1,", 27) + "zh-Hans,fr-FR,de", SimplifiedChinese},
		{"many dashes", strings.Repeat("-", 5000), English},
		// x/text reads these weights as given; what matters is that
		// they do not fail.
		{"q-values out of range", "zh;q=7, en;q=-1", SimplifiedChinese},
		{"q-value not a number", "zh;q=NaN", SimplifiedChinese},
		{"q-value huge", "zh;q=1e308,en;q=1e309", English},
		{"nested parameters", "zh;q=0.9;q=0.8;level=1", English},
		{"control characters", "zh\r\n\tCN", English},
		{"invalid UTF-8", "zh-\xff\xfe", English},
		{"only commas", strings.Repeat(",", 1000), English},
		{"wildcards", strings.Repeat("*,", 1000), English},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Negotiate(tt.in); got != tt.want {
				in := tt.in
				if len(in) > 60 {
					in = in[:60] + "…"
				}
				t.Errorf("Negotiate(%q) = %q, want %q", in, got, tt.want)
			}
		})
	}
}

// The work per request does not grow with the header: a megabyte value
// costs what its first MaxAcceptLanguage bytes cost.
func TestNegotiateBounded(t *testing.T) {
	head := strings.Repeat("en;q=0.1,", 28)
	small := testing.AllocsPerRun(20, func() { Negotiate(head) })
	huge := head + strings.Repeat("zh;q=0.2,", 1<<17)
	big := testing.AllocsPerRun(20, func() { Negotiate(huge) })
	if big > small {
		t.Errorf("Negotiate of %d bytes allocates %v times, of %d bytes %v times", len(huge), big, len(head), small)
	}
}

func TestSetHeaders(t *testing.T) {
	tests := []struct {
		name     string
		vary     []string
		wantVary []string
	}{
		{"none", nil, []string{"Accept-Language"}},
		{"another", []string{"Cookie"}, []string{"Cookie", "Accept-Language"}},
		{"already", []string{"Cookie, accept-language"}, []string{"Cookie, accept-language"}},
		{"star", []string{"*"}, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.vary {
				h.Add("Vary", v)
			}
			SetHeaders(h, SimplifiedChinese)
			SetHeaders(h, SimplifiedChinese)
			if got := h.Values("Vary"); !slices.Equal(got, tt.wantVary) {
				t.Errorf("Vary = %q, want %q", got, tt.wantVary)
			}
			if got := h.Get("Content-Language"); got != SimplifiedChinese {
				t.Errorf("Content-Language = %q", got)
			}
		})
	}
}

// The English reason phrases are net/http's, so that English pages are
// what they were before they were translated.
func TestStatus(t *testing.T) {
	for id := range en {
		code, ok := strings.CutPrefix(id, "http.status.")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("%s: not a status", id)
		}
		if got, want := Status(English, n), http.StatusText(n); got != want {
			t.Errorf("Status(en, %d) = %q, want %q", n, got, want)
		}
		if got := Status(SimplifiedChinese, n); got == http.StatusText(n) {
			t.Errorf("Status(zh-Hans, %d) is English", n)
		}
	}
	if got := Status(SimplifiedChinese, http.StatusTeapot); got != "I'm a teapot" {
		t.Errorf("a status without a message = %q, want net/http's", got)
	}
	if got := Status(English, 599); got != "" {
		t.Errorf("Status(599) = %q, want empty", got)
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "zh-CN,zh;q=0.9,en;q=0.8", "zh-TW", "en;q=0.5,zh;q=0.9", "*", "zh;q=0, en"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Negotiate(s)
		if got != English && got != SimplifiedChinese {
			t.Fatalf("Negotiate(%q) = %q", s, got)
		}
		if len(s) > MaxAcceptLanguage {
			// Only the head counts.
			i := strings.LastIndexByte(s[:MaxAcceptLanguage], ',')
			if i < 0 {
				if got != English {
					t.Fatalf("Negotiate(%q) = %q, want English: no whole entry in the first %d bytes", s, got, MaxAcceptLanguage)
				}
			} else if want := Negotiate(s[:i]); got != want {
				t.Fatalf("Negotiate(%q) = %q, but its head %q is %q", s, got, s[:i], want)
			}
		}
	})
}
