package apikey

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestGenerateParse(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		k, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		pt := k.Plaintext()
		if len(pt) != KeyLen || !strings.HasPrefix(pt, Prefix) {
			t.Fatalf("Generate() = %q, want %d characters starting %s", pt, KeyLen, Prefix)
		}
		id, secret, err := Parse(pt)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", pt, err)
		}
		if id != k.ID() || secret != k.Secret() {
			t.Errorf("Parse(%q) = %q, %q; want %q, %q", pt, id, secret, k.ID(), k.Secret())
		}
		if len(secret)*5 < 256 {
			t.Errorf("secret %d characters, fewer than 256 bits", len(secret))
		}
		if seen[id] {
			t.Errorf("Generate repeated id %s", id)
		}
		seen[id] = true
	}
}

func TestParse(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good := k.Plaintext()
	// Same shape, checksum of another body.
	wrongCheck := good[:checkStart] + checksum(good[:checkStart-1]+"a")
	if wrongCheck == good {
		wrongCheck = good[:checkStart] + checksum(good[:checkStart-1]+"b")
	}
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"valid", good, nil},
		{"empty", "", ErrMalformed},
		{"prefix only", Prefix, ErrMalformed},
		// Attack: whitespace around a key must not be trimmed into a match.
		{"trailing space", good + " ", ErrMalformed},
		{"leading space", " " + good, ErrMalformed},
		// Attack: header injection remnants.
		{"trailing CRLF", good + "\r\n", ErrMalformed},
		{"trailing LF", good + "\n", ErrMalformed},
		// Attack: NUL truncation in C-based layers.
		{"trailing NUL", good + "\x00", ErrMalformed},
		{"NUL inside", good[:30] + "\x00" + good[31:], ErrMalformed},
		// Attack: case folding of the prefix.
		{"upper-case prefix", "CRM_" + good[4:], ErrMalformed},
		{"mixed-case prefix", "Crm_" + good[4:], ErrMalformed},
		{"upper-case body", Prefix + strings.ToUpper(good[4:]), ErrMalformed},
		{"other prefix", "crx_" + good[4:], ErrMalformed},
		{"separator moved", good[:15] + "_" + good[15:16] + good[17:], ErrMalformed},
		{"no separator", good[:sepAt] + "a" + good[sepAt+1:], ErrMalformed},
		{"character outside alphabet", good[:20] + "1" + good[21:], ErrMalformed},
		{"base32 padding", good[:20] + "=" + good[21:], ErrMalformed},
		{"truncated", good[:KeyLen-1], ErrMalformed},
		{"one extra character", good + "a", ErrMalformed},
		{"checksum of another key", wrongCheck, ErrChecksum},
		{"129 bytes", good + strings.Repeat("a", MaxLen+1-KeyLen), ErrTooLong},
		// Attack: a huge value must be refused before any work.
		{"1 MB", strings.Repeat("a", 1<<20), ErrTooLong},
		{"invalid UTF-8", good[:40] + "\xff" + good[41:], ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, secret, err := Parse(tc.in)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Parse(%.40q) = %v, want %v", tc.in, err, tc.want)
			}
			if err != nil && (id != "" || secret != "") {
				t.Errorf("Parse(%.40q) failed but returned %q, %q", tc.in, id, secret)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%.40q) = %v, which does not wrap ErrMalformed", tc.in, err)
			}
		})
	}
}

// Every single-character typo is caught by the checksum or the grammar.
func TestParseSingleTypos(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	good := k.Plaintext()
	for i := range len(good) {
		for _, c := range []byte(alphabet + "_") {
			if c == good[i] {
				continue
			}
			typo := good[:i] + string(c) + good[i+1:]
			if _, _, err := Parse(typo); err == nil {
				t.Fatalf("Parse accepted %q, a typo of %q at %d", typo, good, i)
			}
		}
	}
}

func TestKeyRedaction(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	for _, out := range []string{
		fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q", k, k, k, k, k), fmt.Sprint(&k), logged.String(),
	} {
		if strings.Contains(out, k.Secret()) {
			t.Errorf("printed key %q holds the secret", out)
		}
		if !strings.Contains(out, k.ID()) {
			t.Errorf("printed key %q does not name the id", out)
		}
	}
	if (Key{}).Plaintext() != "" {
		t.Errorf("Key{}.Plaintext() = %q, want \"\"", Key{}.Plaintext())
	}
}

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abcdefgh2345", true},
		{"abcdefgh234", false},
		{"abcdefgh23456", false},
		{"Abcdefgh2345", false},
		{"abcdefgh2341", false},
		{"abcdefgh234_", false},
		{"", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
