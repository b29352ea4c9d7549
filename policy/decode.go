package policy

import (
	"encoding/json"
	"fmt"
	"net/textproto"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"golang.org/x/net/http/httpguts"
)

// The decision is decoded from OPA's own values (see rego.EvalGenerateJSON
// in Set.decide), not from Go maps: it saves converting every answer twice.

// decodeError is a mismatch between a policy's answer and the schema.
type decodeError struct {
	path string
	msg  string
}

func (e *decodeError) Error() string { return e.path + ": " + e.msg }

func mismatch(path, format string, args ...any) error {
	return &decodeError{path: path, msg: fmt.Sprintf(format, args...)}
}

// typeName names the JSON type of a value.
func typeName(v ast.Value) string {
	switch v.(type) {
	case ast.Null:
		return "null"
	case ast.Boolean:
		return "boolean"
	case ast.String:
		return "string"
	case ast.Number:
		return "number"
	case *ast.Array:
		return "array"
	case ast.Set:
		return "set"
	case ast.Object:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// decisionFields are the fields of a decision, allow first.
var decisionFields = []string{"allow", "reason", "step_up", "redact", "filter", "rate_limit", "upstream_headers", "session_action", "audit"}

// fieldTerms are decisionFields as OPA terms, for lookups.
var fieldTerms = func() map[string]*ast.Term {
	m := make(map[string]*ast.Term, len(decisionFields))
	for _, f := range decisionFields {
		m[f] = ast.StringTerm(f)
	}
	for _, f := range []string{"acr", "max_age_s", "path", "action", "keep_last", "keep_where", "tier", "durability", "tags"} {
		m[f] = ast.StringTerm(f)
	}
	return m
}()

// field returns obj's value at name, or nil.
func field(obj ast.Object, name string) ast.Value {
	t := obj.Get(fieldTerms[name])
	if t == nil {
		return nil
	}
	return t.Value
}

// decodeDecision reads a policy's answer strictly: every field must have
// its documented type and allowed values, and unknown fields are refused,
// because a misspelt "redact" silently ignored would leak what it was
// meant to hide.
func decodeDecision(v ast.Value) (Decision, error) {
	var d Decision
	obj, err := object("decision", v, decisionFields...)
	if err != nil {
		if _, isObj := v.(ast.Object); !isObj {
			return d, mismatch("decision", "got %s, want an object with at least allow", typeName(v))
		}
		return d, err
	}
	allow := field(obj, "allow")
	if allow == nil {
		return d, mismatch("decision", "allow is missing")
	}
	b, ok := allow.(ast.Boolean)
	if !ok {
		return d, mismatch("allow", "got %s, want boolean", typeName(allow))
	}
	d.Allow = bool(b)
	for _, k := range decisionFields[1:] {
		v := field(obj, k)
		if v == nil {
			continue
		}
		switch k {
		case "reason":
			d.Reason, err = decodeString("reason", v, false)
		case "step_up":
			d.StepUp, err = decodeStepUp(v)
		case "redact":
			d.Redact, err = decodeRedact(v)
		case "filter":
			d.Filter, err = decodeFilter(v)
		case "rate_limit":
			d.RateLimit, err = decodeRateLimit(v)
		case "upstream_headers":
			d.UpstreamHeaders, err = decodeHeaders(v)
		case "session_action":
			d.SessionAction, err = decodeSessionAction(v)
		case "audit":
			d.Audit, err = decodeAudit(v)
		}
		if err != nil {
			return Decision{}, err
		}
	}
	if d.Allow && d.StepUp != nil {
		return Decision{}, mismatch("step_up", "set on an allow; step_up says what would turn a deny into an allow")
	}
	if d.SessionAction == "" {
		d.SessionAction = SessionNone
	}
	return d, nil
}

func decodeString(path string, v ast.Value, required bool) (string, error) {
	s, ok := v.(ast.String)
	switch {
	case !ok:
		return "", mismatch(path, "got %s, want string", typeName(v))
	case required && s == "":
		return "", mismatch(path, "empty")
	case len(s) > maxStringLen:
		return "", mismatch(path, "longer than %d bytes", maxStringLen)
	}
	return string(s), nil
}

func decodeInt(path string, v ast.Value, lo, hi int64) (int64, error) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, mismatch(path, "got %s, want integer", typeName(v))
	}
	i, ok := n.Int64()
	if !ok {
		return 0, mismatch(path, "%s is not an integer", n)
	}
	if i < lo || i > hi {
		return 0, mismatch(path, "%d is out of range [%d, %d]", i, lo, hi)
	}
	return i, nil
}

// object checks that v is an object whose keys are all strings in
// allowed.
func object(path string, v ast.Value, allowed ...string) (ast.Object, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, mismatch(path, "got %s, want object", typeName(v))
	}
	var unknown []string
	obj.Foreach(func(k, _ *ast.Term) {
		s, ok := k.Value.(ast.String)
		if !ok {
			unknown = append(unknown, k.String())
		} else if !slices.Contains(allowed, string(s)) {
			unknown = append(unknown, string(s))
		}
	})
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, mismatch(path+"."+unknown[0], "unknown field (allowed: %s)", strings.Join(allowed, ", "))
	}
	return obj, nil
}

// list checks that v is an array or a set (taken in its sorted order) of
// at most max elements.
func list(path string, v ast.Value, max int) (*ast.Array, error) {
	var arr *ast.Array
	switch x := v.(type) {
	case *ast.Array:
		arr = x
	case ast.Set:
		arr = x.Sorted()
	default:
		return nil, mismatch(path, "got %s, want array", typeName(v))
	}
	if arr.Len() > max {
		return nil, mismatch(path, "%d entries, at most %d are allowed", arr.Len(), max)
	}
	return arr, nil
}

func decodeStepUp(v ast.Value) (*StepUp, error) {
	obj, err := object("step_up", v, "acr", "max_age_s")
	if err != nil {
		return nil, err
	}
	s := &StepUp{}
	if a := field(obj, "acr"); a != nil {
		if s.ACR, err = decodeString("step_up.acr", a, true); err != nil {
			return nil, err
		}
	}
	if m := field(obj, "max_age_s"); m != nil {
		if s.MaxAgeS, err = decodeInt("step_up.max_age_s", m, 0, maxAgeLimit); err != nil {
			return nil, err
		}
	}
	if s.ACR == "" && s.MaxAgeS == 0 {
		return nil, mismatch("step_up", "needs acr, max_age_s or both")
	}
	return s, nil
}

func decodeRedact(v ast.Value) ([]Redaction, error) {
	arr, err := list("redact", v, maxListItems)
	if err != nil || arr.Len() == 0 {
		return nil, err
	}
	out := make([]Redaction, arr.Len())
	for i := range out {
		path := fmt.Sprintf("redact[%d]", i)
		obj, err := object(path, arr.Elem(i).Value, "path", "action", "keep_last")
		if err != nil {
			return nil, err
		}
		r := &out[i]
		if r.Path, err = decodeJSONPath(path+".path", field(obj, "path")); err != nil {
			return nil, err
		}
		a := field(obj, "action")
		if a == nil {
			return nil, mismatch(path+".action", "missing (remove, mask, hash)")
		}
		if r.Action, err = decodeString(path+".action", a, true); err != nil {
			return nil, err
		}
		switch r.Action {
		case ActionRemove, ActionMask, ActionHash:
		default:
			return nil, mismatch(path+".action", "%q is not allowed (remove, mask, hash)", r.Action)
		}
		if k := field(obj, "keep_last"); k != nil {
			if r.Action != ActionMask {
				return nil, mismatch(path+".keep_last", "only applies to action mask")
			}
			n, err := decodeInt(path+".keep_last", k, 0, maxKeepLast)
			if err != nil {
				return nil, err
			}
			r.KeepLast = int(n)
		}
	}
	return out, nil
}

// decodeJSONPath checks the outline of a JSONPath; the redaction stage
// parses it fully and refuses the response if it cannot.
func decodeJSONPath(path string, v ast.Value) (string, error) {
	if v == nil {
		return "", mismatch(path, "missing")
	}
	s, err := decodeString(path, v, true)
	if err != nil {
		return "", err
	}
	if s[0] != '$' {
		return "", mismatch(path, "%q is not a JSONPath (it must start with $)", s)
	}
	return s, nil
}

func decodeFilter(v ast.Value) ([]Filter, error) {
	arr, err := list("filter", v, maxListItems)
	if err != nil || arr.Len() == 0 {
		return nil, err
	}
	out := make([]Filter, arr.Len())
	for i := range out {
		path := fmt.Sprintf("filter[%d]", i)
		obj, err := object(path, arr.Elem(i).Value, "path", "keep_where")
		if err != nil {
			return nil, err
		}
		f := &out[i]
		if f.Path, err = decodeJSONPath(path+".path", field(obj, "path")); err != nil {
			return nil, err
		}
		kw, ok := field(obj, "keep_where").(ast.Object)
		if !ok {
			got := "nothing"
			if x := field(obj, "keep_where"); x != nil {
				got = typeName(x)
			}
			return nil, mismatch(path+".keep_where", "got %s, want an object of field: value", got)
		}
		if kw.Len() == 0 || kw.Len() > maxTags {
			return nil, mismatch(path+".keep_where", "needs 1 to %d fields, got %d", maxTags, kw.Len())
		}
		f.KeepWhere = make(map[string]any, kw.Len())
		var bad error
		kw.Foreach(func(k, val *ast.Term) {
			ks, ok := k.Value.(ast.String)
			if !ok {
				bad = cmpOr(bad, mismatch(path+".keep_where", "key %s is not a string", k))
				return
			}
			switch x := val.Value.(type) {
			case ast.String:
				f.KeepWhere[string(ks)] = string(x)
			case ast.Boolean:
				f.KeepWhere[string(ks)] = bool(x)
			case ast.Number:
				f.KeepWhere[string(ks)] = json.Number(x)
			default:
				bad = cmpOr(bad, mismatch(path+".keep_where."+string(ks), "got %s, want string, number or boolean", typeName(x)))
			}
		})
		if bad != nil {
			return nil, bad
		}
	}
	return out, nil
}

// cmpOr keeps the first error.
func cmpOr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

func decodeRateLimit(v ast.Value) (*RateLimit, error) {
	obj, err := object("rate_limit", v, "tier")
	if err != nil {
		return nil, err
	}
	t := field(obj, "tier")
	if t == nil {
		return nil, mismatch("rate_limit.tier", "missing")
	}
	tier, err := decodeString("rate_limit.tier", t, true)
	if err != nil {
		return nil, err
	}
	return &RateLimit{Tier: tier}, nil
}

func decodeHeaders(v ast.Value) (map[string]string, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, mismatch("upstream_headers", "got %s, want an object of name: value", typeName(v))
	}
	if obj.Len() > maxTags {
		return nil, mismatch("upstream_headers", "%d headers, at most %d are allowed", obj.Len(), maxTags)
	}
	out := make(map[string]string, obj.Len())
	var bad error
	obj.Foreach(func(k, val *ast.Term) {
		name, ok := k.Value.(ast.String)
		if !ok || !httpguts.ValidHeaderFieldName(string(name)) {
			bad = cmpOr(bad, mismatch("upstream_headers", "%s is not a header name", k))
			return
		}
		path := "upstream_headers." + string(name)
		s, err := decodeString(path, val.Value, false)
		if err != nil {
			bad = cmpOr(bad, err)
			return
		}
		if !httpguts.ValidHeaderFieldValue(s) {
			bad = cmpOr(bad, mismatch(path, "not a valid header value (control characters)"))
			return
		}
		canon := textproto.CanonicalMIMEHeaderKey(string(name))
		if _, dup := out[canon]; dup {
			bad = cmpOr(bad, mismatch(path, "names the same header as another entry"))
			return
		}
		out[canon] = s
	})
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

func decodeSessionAction(v ast.Value) (string, error) {
	s, err := decodeString("session_action", v, true)
	if err != nil {
		return "", err
	}
	switch s {
	case SessionNone, SessionStepUp, SessionRevoke:
		return s, nil
	}
	return "", mismatch("session_action", "%q is not allowed (none, step_up, revoke)", s)
}

func decodeAudit(v ast.Value) (*Audit, error) {
	obj, err := object("audit", v, "durability", "tags")
	if err != nil {
		return nil, err
	}
	a := &Audit{}
	if d := field(obj, "durability"); d != nil {
		if a.Durability, err = decodeString("audit.durability", d, true); err != nil {
			return nil, err
		}
		switch a.Durability {
		case DurabilityAsync, DurabilityStrict:
		default:
			return nil, mismatch("audit.durability", "%q is not allowed (async, strict)", a.Durability)
		}
	}
	if t := field(obj, "tags"); t != nil {
		arr, err := list("audit.tags", t, maxTags)
		if err != nil {
			return nil, err
		}
		if arr.Len() > 0 {
			a.Tags = make([]string, arr.Len())
		}
		for i := range a.Tags {
			if a.Tags[i], err = decodeString(fmt.Sprintf("audit.tags[%d]", i), arr.Elem(i).Value, true); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}
