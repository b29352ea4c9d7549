package fingerprint

import "strings"

// maxAcceptLanguageScan bounds how much of Accept-Language is read;
// browsers send a few dozen bytes.
const maxAcceptLanguageScan = 256

// maxLanguages is how many language subtags are kept.
const maxLanguages = 3

// AcceptLanguage normalises Accept-Language header values to the primary
// language subtags of the first three distinct languages, lower-case and
// comma-separated, in the order sent: "de-CH,de;q=0.9,en;q=0.8" gives
// "de,en". Quality values are dropped (browsers list languages in order of
// preference), and so are "*" and malformed entries. It returns "" when no
// language remains. Only the first 256 bytes are read.
func AcceptLanguage(values ...string) string {
	var (
		buf   [maxLanguages * 9]byte
		out   = buf[:0]
		seen  [maxLanguages]string
		count int
		read  int
	)
	for _, v := range values {
		for v != "" && count < maxLanguages && read < maxAcceptLanguageScan {
			if len(v) > maxAcceptLanguageScan-read {
				v = v[:maxAcceptLanguageScan-read]
			}
			item, rest, _ := strings.Cut(v, ",")
			read += len(item) + 1
			v = rest
			tag := primarySubtag(item)
			if tag == "" || isSeen(seen[:count], tag) {
				continue
			}
			seen[count] = tag
			count++
			if len(out) > 0 {
				out = append(out, ',')
			}
			for i := 0; i < len(tag); i++ {
				out = append(out, tag[i]|0x20) // ASCII letters only: lower-case
			}
		}
	}
	return string(out)
}

// primarySubtag returns the primary language subtag of one Accept-Language
// entry ("en-US;q=0.8" gives "en"), or "" unless it is 1 to 8
// ASCII letters (RFC 5646 §2.1). It is compared case-insensitively.
func primarySubtag(item string) string {
	item, _, _ = strings.Cut(item, ";")
	item = strings.TrimSpace(item)
	if i := strings.IndexAny(item, "-_"); i >= 0 {
		item = item[:i]
	}
	if len(item) == 0 || len(item) > 8 {
		return ""
	}
	for i := 0; i < len(item); i++ {
		if c := item[i] | 0x20; c < 'a' || c > 'z' {
			return ""
		}
	}
	return item
}

func isSeen(seen []string, tag string) bool {
	for _, s := range seen {
		if strings.EqualFold(s, tag) {
			return true
		}
	}
	return false
}
