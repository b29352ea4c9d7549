package bearer

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJSONDepth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want int
	}{
		{`{}`, 1},
		{`{"a":[1,{"b":2}]}`, 3},
		{`{"a":"[[[[{{{{"}`, 1},
		{`{"a":"\"[[[","b":[]}`, 2},
		{`{"a":"\\","b":[[]]}`, 3},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), maxClaimDepth + 1},
	} {
		if got := jsonDepth([]byte(tt.in)); got != tt.want {
			t.Errorf("jsonDepth(%.40s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestLookupClaim(t *testing.T) {
	t.Parallel()
	var claims map[string]json.RawMessage
	if err := json.Unmarshal([]byte(`{"roles":["a"],"realm_access":{"roles":["b"]},"resource_access":{"crm":{"roles":"c"}},"https://x.example/roles":["d"],"s":"x"}`), &claims); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"roles", []string{"a"}},
		{"realm_access.roles", []string{"b"}},
		{"resource_access.crm.roles", []string{"c"}},
		{"https://x.example/roles", []string{"d"}},
		{"realm_access.missing", nil},
		{"s.roles", nil},
		{"missing", nil},
	} {
		got := stringList(lookupClaim(claims, tt.path, strings.Split(tt.path, ".")), false)
		if d := cmp.Diff(got, tt.want); d != "" {
			t.Errorf("lookupClaim(%q) (-got +want):\n%s", tt.path, d)
		}
	}
}

func TestStringList(t *testing.T) {
	t.Parallel()
	var many []string
	var want []string
	for i := range 100 {
		many = append(many, fmt.Sprint(i%40), "")
		if i < 40 {
			want = append(want, fmt.Sprint(i))
		}
	}
	manyJSON, _ := json.Marshal(many)
	for _, tt := range []struct {
		in    string
		split bool
		want  []string
	}{
		{`"a b  c a"`, true, []string{"a", "b", "c"}},
		{`"a b"`, false, []string{"a b"}},
		{`["a",1,null,"b","a",""]`, true, []string{"a", "b"}},
		{`{"a":1}`, true, nil},
		{`42`, false, nil},
		{string(manyJSON), false, want},
	} {
		if d := cmp.Diff(stringList(json.RawMessage(tt.in), tt.split), tt.want); d != "" {
			t.Errorf("stringList(%.40s) (-got +want):\n%s", tt.in, d)
		}
	}
}

func TestNumericDate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{`1700000000`, time.Unix(1700000000, 0).UTC(), false},
		{`1700000000.5`, time.Unix(1700000000, 5e8).UTC(), false},
		{`1.7e9`, time.Unix(1700000000, 0).UTC(), false},
		{`"1700000000"`, time.Time{}, true},
		{`-1`, time.Time{}, true},
		{`1e300`, time.Time{}, true},
		{`null`, time.Time{}, true},
	} {
		got, _, err := numericDate(map[string]json.RawMessage{"exp": json.RawMessage(tt.in)}, "exp")
		if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
			t.Errorf("numericDate(%s) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
