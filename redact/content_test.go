package redact

import "testing"

func TestTransformable(t *testing.T) {
	tests := []struct {
		ct   string
		want bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON; Charset=UTF-8", true},
		{`application/json; charset="utf-8"`, true},
		{"application/problem+json", true},
		{"application/vnd.api+json; profile=x", true},
		{"text/x-custom+json", true},
		{"application/json; charset=iso-8859-1", false},
		{"application/json; charset=utf-16", false},
		{"application/json; charset=utf8", false},
		{"application/+json", false},
		{"application/jsonp", false},
		{"application/json-seq", false},
		{"application/x-ndjson", false},
		{"text/json", false},
		{"text/plain", false},
		{"text/html; charset=utf-8", false},
		{"*/*+json", false},
		{"json", false},
		{"", false},
		{"application/json;;", false},
	}
	for _, tt := range tests {
		if got := Transformable(tt.ct); got != tt.want {
			t.Errorf("Transformable(%q) = %v, want %v", tt.ct, got, tt.want)
		}
	}
}
