package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/crmgate/crmgate/internal/jsonstr"
)

// The Data API's JSON on both sides: the input is written from the OPA
// value the embedded engine evaluates (so the server sees exactly that
// document), and the answer is read into OPA values for decodeDecision,
// the embedded engine's decoder.

// appendJSON appends v as JSON. Strings were checked to be UTF-8 when the
// input was converted, so nothing is replaced on the way.
func appendJSON(dst []byte, v ast.Value) ([]byte, error) {
	switch x := v.(type) {
	case ast.Null:
		return append(dst, "null"...), nil
	case ast.Boolean:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case ast.Number:
		// ast.Number holds a JSON number's text (see input_value.go).
		return append(dst, x...), nil
	case ast.String:
		return jsonstr.Append(dst, string(x)), nil
	case *ast.Array:
		dst = append(dst, '[')
		var err error
		for i := range x.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendJSON(dst, x.Elem(i).Value); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case ast.Set:
		return appendJSON(dst, x.Sorted())
	case ast.Object:
		dst = append(dst, '{')
		var err error
		i := 0
		x.Foreach(func(k, val *ast.Term) {
			if err != nil {
				return
			}
			s, ok := k.Value.(ast.String)
			if !ok {
				err = fmt.Errorf("object key %s is not a string", k)
				return
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			i++
			dst = jsonstr.Append(dst, string(s))
			dst = append(dst, ':')
			dst, err = appendJSON(dst, val.Value)
		})
		if err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("a %s has no JSON form", typeName(v))
}

// maxAnswerDepth bounds the nesting of a server's answer: a decision is
// four levels deep.
const maxAnswerDepth = 32

// errDuplicateKey marks an object that names a key twice: JSON readers
// disagree on which value counts ({"allow": false, "allow": true}), so
// such an answer means nothing reliable.
var errDuplicateKey = errors.New("duplicate key")

// parseJSON reads exactly one JSON value from b into OPA's values:
// numbers keep their text, duplicate keys and trailing data are errors.
func parseJSON(b []byte) (ast.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (ast.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxAnswerDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxAnswerDepth)
		}
		if t == '[' {
			var elems []*ast.Term
			for dec.More() {
				v, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				elems = append(elems, ast.NewTerm(v))
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return ast.NewArray(elems...), nil
		}
		// '{': json.Decoder only hands out delimiters that open here.
		var kv [][2]*ast.Term
		var keys []string
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder guarantees a string key
			if slices.Contains(keys, k) {
				return nil, fmt.Errorf("%w %q", errDuplicateKey, k)
			}
			keys = append(keys, k)
			v, err := parseValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			kv = append(kv, [2]*ast.Term{ast.StringTerm(k), ast.NewTerm(v)})
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return ast.NewObject(kv...), nil
	case string:
		return ast.String(t), nil
	case json.Number:
		return ast.Number(t), nil
	case bool:
		return ast.Boolean(t), nil
	case nil:
		return ast.Null{}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// dataAnswer is the Data API's answer to POST /v1/data/...: the
// decision, when the rule is defined for the input, and what the server
// says about it.
type dataAnswer struct {
	// result is nil when the rule is undefined for the input.
	result ast.Value
	// decisionID is the server's id of the decision, when its decision
	// logging is on.
	decisionID string
	// bundles names the server's bundles and their revisions as
	// provenance reports them: "name@revision", sorted, comma-separated;
	// empty when it has none.
	bundles string
}

// parseDataAnswer reads the Data API's answer strictly: one JSON object
// (duplicate keys refused everywhere), decision_id a string, provenance
// an object whose bundles have string revisions. Other members (metrics,
// warning) are ignored.
func parseDataAnswer(b []byte) (dataAnswer, error) {
	var a dataAnswer
	v, err := parseJSON(b)
	if err != nil {
		return a, fmt.Errorf("the answer is not JSON: %w", err)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return a, fmt.Errorf("the answer is a JSON %s, want an object", typeName(v))
	}
	a.result = member(obj, "result")
	if v := member(obj, "decision_id"); v != nil {
		if a.decisionID, err = decodeString("decision_id", v, false); err != nil {
			return dataAnswer{}, err
		}
	}
	if v := member(obj, "provenance"); v != nil {
		if a.bundles, err = provenanceBundles(v); err != nil {
			return dataAnswer{}, err
		}
	}
	return a, nil
}

// provenanceBundles reads provenance.bundles: {"name": {"revision": "…"}}.
func provenanceBundles(v ast.Value) (string, error) {
	p, ok := v.(ast.Object)
	if !ok {
		return "", mismatch("provenance", "got %s, want object", typeName(v))
	}
	bv := member(p, "bundles")
	if bv == nil {
		return "", nil
	}
	bs, ok := bv.(ast.Object)
	if !ok {
		return "", mismatch("provenance.bundles", "got %s, want object", typeName(bv))
	}
	if bs.Len() > maxTags {
		return "", mismatch("provenance.bundles", "%d bundles, at most %d are allowed", bs.Len(), maxTags)
	}
	var names []string
	var bad error
	bs.Foreach(func(k, val *ast.Term) {
		name, _ := k.Value.(ast.String) // keys of parsed JSON are strings
		path := "provenance.bundles." + string(name)
		b, ok := val.Value.(ast.Object)
		if !ok {
			bad = cmpOr(bad, mismatch(path, "got %s, want object", typeName(val.Value)))
			return
		}
		rev := ""
		if r := member(b, "revision"); r != nil {
			s, err := decodeString(path+".revision", r, false)
			if err != nil {
				bad = cmpOr(bad, err)
				return
			}
			rev = s
		}
		if len(name) > maxStringLen {
			bad = cmpOr(bad, mismatch("provenance.bundles", "a bundle name is longer than %d bytes", maxStringLen))
			return
		}
		names = append(names, string(name)+"@"+rev)
	})
	if bad != nil {
		return "", bad
	}
	slices.Sort(names)
	return strings.Join(names, ","), nil
}
