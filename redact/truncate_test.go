package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// sample exercises every token kind, escapes, multi-byte characters,
// redacted and filtered parts; it ends with its closing brace, so that no
// proper prefix of it is a JSON text.
const sample = "\uFEFF" + `{"items":[
  {"id":1,"owner":"alice","name":"Zoë \"Z\" Müller","ssn":"123-45-6789","credit_card":"4111111111111111",
   "tags":["a","b\u00e9",true,false,null],"score":-12.5e+3,"s\u0073n":{"nested":[1,2,{"x":"y"}]}},
  {"id":2,"owner":"bob","ssn":"987-65-4321","credit_card":"5500000000000004"},
  {"id":3,"owner":"alice","email":"a@example.com","note":"😀\ud83d\ude00\/\b\f\n\r\t"}
 ],"total":3,"next":null,"ratio":0.25,"big":1e999}`

func sampleProgram(t *testing.T) *Program {
	return mustCompile(t, []Rule{
		{Path: "$..ssn", Action: ActionRemove},
		{Path: "$..credit_card", Action: ActionMask, KeepLast: 4},
		{Path: "$..email", Action: ActionHash},
		{Path: "$.items[*].tags[1]", Action: ActionNull},
	}, []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}})
}

// A body cut anywhere is refused, and nothing of it is passed on: the
// proxy cuts the response off instead of completing a partial document.
func TestTruncatedAtEveryOffset(t *testing.T) {
	p := sampleProgram(t)
	for n := 0; n < len(sample); n++ {
		var dst bytes.Buffer
		_, err := p.Transform(&dst, strings.NewReader(sample[:n]))
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("Transform(sample[:%d] = …%q) error %v, want ErrMalformed", n, sample[max(0, n-10):n], err)
		}
		if dst.Len() != 0 {
			t.Fatalf("Transform(sample[:%d]) wrote %q", n, dst.String())
		}
	}
	want := `{"items":[{"id":1,"owner":"alice","name":"Zoë \"Z\" Müller","credit_card":"****1111","tags":["a",null,true,false,null],"score":-12.5e+3},` +
		`{"id":3,"owner":"alice","email":` + hashOf("a@example.com") + `,"note":"😀\ud83d\ude00\/\b\f\n\r\t"}],"total":3,"next":null,"ratio":0.25,"big":1e999}`
	got, _, err := transformAll(t, p, sample)
	if err != nil || got != want {
		t.Fatalf("Transform(sample) = %s, %v\nwant %s", got, err, want)
	}
}

// Where the writes cut the body never changes the output.
func TestSplitAtEveryOffset(t *testing.T) {
	p := sampleProgram(t)
	var whole bytes.Buffer
	if _, err := p.Transform(&whole, strings.NewReader(sample)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= len(sample); i++ {
		for _, j := range []int{i, min(i+1, len(sample)), min(i+7, len(sample))} {
			var dst bytes.Buffer
			w := p.NewWriter(&dst)
			for _, part := range []string{sample[:i], sample[i:j], sample[j:]} {
				if _, err := w.Write([]byte(part)); err != nil {
					t.Fatalf("split %d,%d: %v", i, j, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("split %d,%d: Close: %v", i, j, err)
			}
			if dst.String() != whole.String() {
				t.Fatalf("split %d,%d: %s\nwant %s", i, j, dst.String(), whole.String())
			}
		}
	}
}

// Every single-byte corruption of the sample is either refused or yields
// valid JSON.
func TestCorruptedAtEveryOffset(t *testing.T) {
	p := sampleProgram(t)
	for i := 0; i < len(sample); i++ {
		for _, c := range []byte{'"', '\\', '}', ']', ',', ':', 0, 0xff, 'x', '1', ' '} {
			b := []byte(sample)
			b[i] = c
			var dst bytes.Buffer
			_, err := p.Transform(&dst, bytes.NewReader(b))
			if err == nil && !json.Valid(dst.Bytes()) {
				t.Fatalf("corrupt %q at %d: invalid output %s", c, i, dst.String())
			}
			if err != nil && dst.Len() != 0 {
				t.Fatalf("corrupt %q at %d: %v after writing %q", c, i, err, dst.String())
			}
		}
	}
}
