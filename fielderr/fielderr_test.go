package fielderr

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestJoin(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"", "x", "x"},
		{"tls", "", "tls"},
		{"tls", "acme.email", "tls.acme.email"},
		{"routes", "[2].path", "routes[2].path"},
	}
	for _, tt := range tests {
		if got := Join(tt.a, tt.b); got != tt.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPrefix(t *testing.T) {
	err := errors.Join(New("email", "required"), errors.Join(New("", "bad"), errors.New("plain")), nil)
	var got []string
	for _, e := range Flatten(Prefix("tls.acme", err)) {
		got = append(got, e.Error())
	}
	want := []string{"tls.acme.email: required", "tls.acme: bad", "tls.acme: plain"}
	if d := cmp.Diff(got, want); d != "" {
		t.Errorf("Prefix (-got +want):\n%s", d)
	}
	if Prefix("x", nil) != nil {
		t.Error("Prefix(x, nil) != nil")
	}
}
