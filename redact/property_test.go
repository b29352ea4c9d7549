package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// docGen writes random JSON documents: random nesting, escaping and
// whitespace, with secret values under the names the rules redact.
type docGen struct {
	r       *rand.Rand
	b       strings.Builder
	secrets []string // values that must never appear in the output
	n       int
}

var (
	secretNames = []string{"ssn", "credit_card", "password", "token"}
	plainNames  = []string{"id", "name", "notes", "items", "a", "b", "owner", "x y", "é", ""}
	plainWords  = []string{"Ada", "Zoë", "quote\"d", "back\\slash", "tab\t", "nl\n", "😀", "\u2028", "", "ssn", "credit_card"}
)

func (g *docGen) ws() {
	for g.r.IntN(4) == 0 {
		g.b.WriteByte(" \t\n\r"[g.r.IntN(4)])
	}
}

// name writes a member name, sometimes with letters as \u escapes.
func (g *docGen) name(s string) {
	g.b.WriteByte('"')
	for _, c := range s {
		switch {
		case c < 0x80 && g.r.IntN(4) == 0:
			fmt.Fprintf(&g.b, `\u%04x`, c)
		case c == '"' || c == '\\':
			g.b.WriteString(`\` + string(c))
		default:
			g.b.WriteRune(c)
		}
	}
	g.b.WriteByte('"')
}

// str writes s as a JSON string, escaping some characters that need not be.
func (g *docGen) str(s string) {
	q, _ := json.Marshal(s)
	if g.r.IntN(3) == 0 {
		q = bytes.ReplaceAll(q, []byte("a"), []byte(`\u0061`))
	}
	g.b.Write(q)
}

// secret writes a value no other part of any document contains, as a
// string, a number or an object or array holding secrets.
func (g *docGen) secret(depth int) {
	g.n++
	switch g.r.IntN(5) {
	case 0:
		v := fmt.Sprintf("%d", 987654321000+g.n*7919)
		g.secrets = append(g.secrets, v)
		g.b.WriteString(v)
	case 1:
		if depth < 6 {
			g.b.WriteString(`{"k":`)
			g.secret(depth + 1)
			g.b.WriteString(`,"l":[`)
			g.secret(depth + 1)
			g.b.WriteString(`]}`)
			return
		}
		fallthrough
	default:
		v := fmt.Sprintf("SECRET-%d-%x", g.n, g.r.Uint32())
		g.secrets = append(g.secrets, v)
		g.str(v)
	}
}

func (g *docGen) value(depth int) {
	g.ws()
	k := g.r.IntN(10)
	if depth > 5 {
		k = 5 + k%5
	}
	switch {
	case k < 3:
		g.b.WriteByte('{')
		for i, n := 0, g.r.IntN(5); i < n; i++ {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.ws()
			secret := g.r.IntN(3) == 0
			if secret {
				g.name(secretNames[g.r.IntN(len(secretNames))])
			} else {
				g.name(plainNames[g.r.IntN(len(plainNames))])
			}
			g.ws()
			g.b.WriteByte(':')
			if secret {
				g.ws()
				g.secret(depth)
			} else {
				g.value(depth + 1)
			}
			g.ws()
		}
		g.b.WriteByte('}')
	case k < 5:
		g.b.WriteByte('[')
		for i, n := 0, g.r.IntN(5); i < n; i++ {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteByte(']')
	case k < 7:
		g.str(plainWords[g.r.IntN(len(plainWords))])
	case k < 8:
		g.b.WriteString([]string{"0", "-1", "3.25", "1e999", "-0.0E-5", "42"}[g.r.IntN(6)])
	default:
		g.b.WriteString([]string{"true", "false", "null"}[g.r.IntN(3)])
	}
	g.ws()
}

func randomDoc(r *rand.Rand) (string, []string) {
	g := &docGen{r: r}
	// The top level is an object so that secrets can sit right below it.
	g.b.WriteByte('{')
	g.name("ssn")
	g.b.WriteByte(':')
	g.secret(0)
	g.b.WriteString(`,"doc":`)
	g.value(0)
	g.b.WriteByte('}')
	return g.b.String(), g.secrets
}

// writeInPieces writes in through a Writer cut at random places.
func writeInPieces(t *testing.T, r *rand.Rand, p *Program, in string) (string, error) {
	var dst bytes.Buffer
	w := p.NewWriter(&dst)
	for len(in) > 0 {
		k := min(len(in), 1+r.IntN(16))
		if _, err := w.Write([]byte(in[:k])); err != nil {
			return "", err
		}
		in = in[k:]
	}
	err := w.Close()
	return dst.String(), err
}

// For random documents with secrets under redacted names, the output is
// valid JSON without any secret; without rules it means the same as the
// input.
func TestPropertyRandomDocuments(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	redacting := mustCompile(t, []Rule{
		{Path: "$..ssn", Action: ActionRemove},
		{Path: "$..credit_card", Action: ActionMask},
		{Path: "$..password", Action: ActionHash},
		{Path: "$..token", Action: ActionNull},
	}, nil)
	identity := mustCompile(t, nil, nil)
	iterations := 3000
	if testing.Short() {
		iterations = 300
	}
	for i := range iterations {
		in, secrets := randomDoc(r)
		if !json.Valid([]byte(in)) {
			t.Fatalf("generator wrote invalid JSON: %s", in)
		}
		got, err := writeInPieces(t, r, redacting, in)
		if err != nil {
			t.Fatalf("doc %d: Transform(%s): %v", i, in, err)
		}
		if !json.Valid([]byte(got)) || !utf8.ValidString(got) {
			t.Fatalf("doc %d: Transform(%s) = %s, not valid JSON", i, in, got)
		}
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Fatalf("doc %d: secret %s leaked:\nin  %s\nout %s", i, s, in, got)
			}
		}
		same, err := writeInPieces(t, r, identity, in)
		if err != nil {
			t.Fatalf("doc %d: identity Transform(%s): %v", i, in, err)
		}
		if a, b := decodeAny(t, in), decodeAny(t, same); !reflect.DeepEqual(a, b) {
			t.Fatalf("doc %d: without rules the meaning changed:\nin  %s\nout %s", i, in, same)
		}
	}
}

// Random rows: every row kept belongs to the filter's owner, and every
// row of that owner is kept.
func TestPropertyRandomRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	p := mustCompile(t, shippedRules, shippedFilters)
	for i := range 500 {
		var b strings.Builder
		want := 0
		b.WriteString(`{"items":[`)
		for j, n := 0, r.IntN(20); j < n; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			owner := owners[r.IntN(len(owners))]
			if owner == "alice" {
				want++
			}
			g := &docGen{r: r}
			g.value(2)
			fmt.Fprintf(&b, `{"x":%s,"own\u0065r":%q,"ssn":"SSN-SECRET-%d"}`, g.b.String(), owner, j)
		}
		b.WriteString(`]}`)
		got, err := writeInPieces(t, r, p, b.String())
		if err != nil {
			t.Fatalf("Transform(%s): %v", b.String(), err)
		}
		var doc struct{ Items []map[string]json.RawMessage }
		if err := json.Unmarshal([]byte(got), &doc); err != nil {
			t.Fatalf("Transform(%s) = %s: %v", b.String(), got, err)
		}
		if len(doc.Items) != want || strings.Contains(got, "SSN-SECRET") {
			t.Fatalf("doc %d: %d rows kept, want %d; output %s", i, len(doc.Items), want, got)
		}
		for _, it := range doc.Items {
			if string(it["owner"]) != `"alice"` {
				t.Fatalf("doc %d: kept a row of %s", i, it["owner"])
			}
		}
	}
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}
