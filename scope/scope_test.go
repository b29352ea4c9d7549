package scope

import (
	"context"
	"testing"
)

func TestWithFrom(t *testing.T) {
	if From(context.Background()) != nil {
		t.Error("From(empty context) != nil")
	}
	s := &Scope{ID: "abc"}
	if got := From(With(context.Background(), s)); got != s {
		t.Errorf("From(With(s)) = %p, want %p", got, s)
	}
}
