//go:build goexperiment.jsonv2

package redact

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"encoding/json/jsontext"
)

// BenchmarkJSONTextBaseline does the shipped rules' work with the
// streaming tokenizer of encoding/json/jsontext (GOEXPERIMENT=jsonv2):
// tokens in, tokens out, each row of items read whole to check its owner.
func BenchmarkJSONTextBaseline(b *testing.B) {
	for _, size := range []int{10 << 20, 100 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			body := export(size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuMetrics(b, len(body))()
			for b.Loop() {
				if err := jsontextBaseline(io.Discard, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestJSONTextBaselineAgrees checks that the jsontext baseline does the
// same work: its output means what the transform's does.
func TestJSONTextBaselineAgrees(t *testing.T) {
	body := export(1 << 20)
	var got, want bytes.Buffer
	if err := jsontextBaseline(&got, body); err != nil {
		t.Fatal(err)
	}
	if _, err := shippedProgram(t).Transform(&want, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if g, w := decodeAny(t, got.String()), decodeAny(t, want.String()); fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("jsontext baseline differs from Transform")
	}
}

func jsontextBaseline(w io.Writer, body []byte) error {
	enc := jsontext.NewEncoder(w)
	return jsontextCopy(jsontext.NewDecoder(bytes.NewReader(body)), enc, true)
}

// jsontextCopy copies one value from dec to enc, removing ssn, masking
// credit_card and, when top, filtering the rows of items.
func jsontextCopy(dec *jsontext.Decoder, enc *jsontext.Encoder, top bool) error {
	start := dec.StackDepth()
	for {
		kind, n := dec.StackIndex(dec.StackDepth())
		if kind == '{' && n%2 == 0 && dec.PeekKind() == '"' {
			name, err := dec.ReadToken()
			if err != nil {
				return err
			}
			switch name.String() {
			case "ssn":
				if err := dec.SkipValue(); err != nil {
					return err
				}
				continue
			case "credit_card":
				if err := enc.WriteToken(name); err != nil {
					return err
				}
				masked := "****"
				if dec.PeekKind() == '"' {
					v, err := dec.ReadToken()
					if err != nil {
						return err
					}
					if r := []rune(v.String()); len(r) > 4 {
						masked += string(r[len(r)-4:])
					}
				} else if err := dec.SkipValue(); err != nil {
					return err
				}
				if err := enc.WriteToken(jsontext.String(masked)); err != nil {
					return err
				}
				continue
			case "items":
				name = name.Clone() // outlives the next read
				if top && dec.StackDepth() == 1 && dec.PeekKind() == '[' {
					if err := enc.WriteToken(name); err != nil {
						return err
					}
					if err := jsontextRows(dec, enc); err != nil {
						return err
					}
					continue
				}
			}
			if err := enc.WriteToken(name); err != nil {
				return err
			}
			continue
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if err := enc.WriteToken(tok); err != nil {
			return err
		}
		if dec.StackDepth() == start {
			return nil
		}
	}
}

func jsontextRows(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	if _, err := dec.ReadToken(); err != nil { // [
		return err
	}
	if err := enc.WriteToken(jsontext.BeginArray); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		row, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if !jsontextOwned(row) {
			continue
		}
		if err := jsontextCopy(jsontext.NewDecoder(bytes.NewReader(row)), enc, false); err != nil {
			return err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	return enc.WriteToken(jsontext.EndArray)
}

// jsontextOwned reports whether every top-level owner of row is alice.
func jsontextOwned(row jsontext.Value) bool {
	if row.Kind() != '{' {
		return false
	}
	d := jsontext.NewDecoder(bytes.NewReader(row))
	d.ReadToken()
	seen := false
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return false
		}
		if name.String() != "owner" {
			if d.SkipValue() != nil {
				return false
			}
			continue
		}
		v, err := d.ReadToken()
		if err != nil || v.Kind() != '"' || v.String() != "alice" {
			return false
		}
		seen = true
	}
	return seen
}
