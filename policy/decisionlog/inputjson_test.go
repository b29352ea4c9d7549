package decisionlog

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/crmgate/crmgate/policy"
)

// stdInput is encoding/json's form of in, without HTML escaping.
func stdInput(in *policy.Input) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(in)
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), err
}

// populate sets every exported field below v to a value that is not zero,
// so that a field added to policy.Input is in the comparison without
// anyone remembering to add it.
func populate(t *testing.T, v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + strconv.Itoa(seed) + "\n\"é\x01")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(1000 + seed))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		populate(t, v.Elem(), seed+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			populate(t, v.Index(i), seed+i)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := range 3 {
			k := reflect.New(v.Type().Key()).Elem()
			populate(t, k, seed+i)
			e := reflect.New(v.Type().Elem()).Elem()
			if e.Kind() == reflect.Interface {
				e.Set(reflect.ValueOf(map[string]any{"n": 1.5, "l": []any{"x", true, nil, 2e21}}))
			} else {
				populate(t, e, seed+i)
			}
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 15, 4, 5, 6, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				populate(t, v.Field(i), seed+i)
			}
		}
	default:
		t.Fatalf("populate: no case for %s; teach it and appendInput the new field", v.Type())
	}
}

// appendInput writes exactly what encoding/json writes, for every field
// of the input, set, empty or nil.
func TestInputJSON(t *testing.T) {
	full := &policy.Input{}
	populate(t, reflect.ValueOf(full).Elem(), 0)
	empty := &policy.Input{
		Request: policy.RequestInput{Query: map[string][]string{}, Headers: map[string]string{}},
		Route:   policy.RouteInput{Params: map[string]string{}, Tags: []string{}},
		Subject: policy.SubjectInput{Roles: []string{}, Groups: []string{}, AMR: []string{}, Claims: map[string]any{}},
		Session: &policy.SessionInput{Fingerprint: policy.FingerprintInput{Changed: []string{}}},
	}
	manyKeys := testInput()
	for i := range 40 {
		manyKeys.Request.Headers["x-h-"+strconv.Itoa(i)] = strconv.Itoa(i)
	}
	claims := testInput()
	claims.Subject.Claims = map[string]any{
		"f": []any{0.0, -0.0, 1e-7, 123456789.0, 1e21, 1.5e300, -2.5e-300, float64(1 << 53)},
		"i": []any{1, int64(-7)}, "n": json.Number("12.50"), "u": uint8(3), "s": []string{"a"}, "nil": nil,
		"deep": map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": true}}}},
		"x":    struct{ A int }{1},
	}
	tests := map[string]*policy.Input{"full": full, "zero": {}, "empty": empty, "realistic": testInput(), "many keys": manyKeys, "claims": claims}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			want, err := stdInput(in)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendInput(nil, in, &fallback{})
			if !ok {
				t.Fatal("appendInput reports no JSON form")
			}
			if !bytes.Equal(got, want) {
				t.Errorf("appendInput =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// An input with no JSON form is reported, as encoding/json reports it,
// and its event is still written, without the input.
func TestInputJSONInvalid(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, mod := range map[string]func(*policy.Input){
		"NaN claim":     func(in *policy.Input) { in.Subject.Claims = map[string]any{"x": math.NaN()} },
		"infinite":      func(in *policy.Input) { in.Subject.Claims = map[string]any{"x": []any{math.Inf(-1)}} },
		"year 10000":    func(in *policy.Input) { in.Request.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"channel claim": func(in *policy.Input) { in.Subject.Claims = map[string]any{"x": make(chan int)} },
		"cyclic claim":  func(in *policy.Input) { in.Subject.Claims = cyclic },
	} {
		t.Run(name, func(t *testing.T) {
			in := testInput()
			mod(in)
			if _, err := stdInput(in); err == nil {
				t.Fatal("encoding/json encodes it")
			}
			if _, ok := appendInput(nil, in, &fallback{}); ok {
				t.Error("appendInput = ok, want false")
			}
			l := newTestLogger(t, Config{}, nil, Options{})
			m := decodeEvent(t, encode(l, Entry{Input: in, Decision: testDecision()}))
			if _, ok := m["input"]; ok {
				t.Error("input present")
			}
			if m["erased"].([]any)[0] != "/input" {
				t.Errorf("erased = %v, want /input", m["erased"])
			}
		})
	}
}

// FuzzInputJSON checks appendInput against encoding/json, byte for byte.
func FuzzInputJSON(f *testing.F) {
	f.Add("x\ny", "\xff", "\u2028", 1.5, int64(-1))
	f.Add("", `"\`, "\x00<&>", 1e21, int64(1767366245))
	f.Fuzz(func(t *testing.T, a, b, c string, x float64, n int64) {
		in := testInput()
		in.Request.Path = a
		in.Request.Headers = map[string]string{a: b, b: c, "user-agent": c}
		in.Request.Query = map[string][]string{c: {a, b}}
		in.Subject.AuthTime = n
		in.Subject.Claims = map[string]any{a: x, b: []any{c, x, map[string]any{c: a}}}
		want, err := stdInput(in)
		got, ok := appendInput(nil, in, &fallback{})
		if (err == nil) != ok {
			t.Fatalf("appendInput ok = %v, encoding/json error %v", ok, err)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("appendInput =\n%s\nwant\n%s", got, want)
		}
	})
}
