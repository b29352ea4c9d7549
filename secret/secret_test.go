package secret

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

const strong = "q8Vf2kLm9Xz4Rt7Wb1Nc6Hy3Jd5Ps0Ga8Ue2Io4Ak7+/=" // like openssl rand -base64 32

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{"env:CRMGATE_KEY", false},
		{"file:/run/secrets/key", false},
		{"hunter2", true},
		{"env:", true},
		{"env:A=B", true},
		{"file:relative/path", true},
		{"vault:secret/x", true},
		{strong, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseRef(tt.in)
			if (err != nil) != tt.wantErr {
				t.Errorf("ParseRef(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	res := Resolver{
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"GOOD": strong, "WEAK": "changeme", "EMPTY": ""}[k]
			return v, ok
		},
		ReadFile: func(p string) ([]byte, error) {
			switch p {
			case "/good":
				return []byte(strong + "\n"), nil
			case "/short":
				return []byte("abc123\n"), nil
			}
			return nil, fs.ErrNotExist
		},
	}
	tests := []struct {
		ref     string
		want    string
		wantErr string
	}{
		{ref: "env:GOOD", want: strong},
		{ref: "file:/good", want: strong},
		{ref: "env:MISSING", wantErr: "not set"},
		{ref: "env:EMPTY", wantErr: "empty"},
		{ref: "env:WEAK", wantErr: "well-known default"},
		{ref: "file:/short", wantErr: "entropy"},
		{ref: "file:/missing", wantErr: "file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r := MustParseRef(tt.ref)
			err := r.Resolve(res)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve(%s) = %v, want error containing %q", tt.ref, err, tt.wantErr)
				}
				if r.Value() != nil {
					t.Errorf("Resolve(%s) kept a value after failing", tt.ref)
				}
				return
			}
			if err != nil || string(r.Value()) != tt.want {
				t.Fatalf("Resolve(%s) = %q, %v; want %q", tt.ref, r.Value(), err, tt.want)
			}
			if r.String() != tt.ref {
				t.Errorf("String() = %q, want the reference, never the value", r.String())
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		v    string
		weak bool
	}{
		{"random base64", strong, false},
		{"64 hex chars", "3f9a1c7e5b2d8f0a4c6e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a", false},
		{"32 hex chars", "3f9a1c7e5b2d8f0a4c6e1b3d5f7a9c0e", true},
		{"empty", "", true},
		{"default", "changeme", true},
		{"default with padding", "changeme-changeme-2024!", true},
		{"repeated", strings.Repeat("Ab1!", 20), true},
		{"one character", strings.Repeat("a", 100), true},
		{"few distinct", strings.Repeat("abcab", 7) + "cbacbacbacbacbac", true},
		{"long passphrase", "correct horse battery staple orbital quince juniper vellum", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check([]byte(tt.v))
			if (err != nil) != tt.weak {
				t.Errorf("Check(%q) = %v (%.0f bits), want weak=%v", tt.v, err, EntropyBits([]byte(tt.v)), tt.weak)
			}
			if err != nil && !errors.Is(err, ErrWeak) {
				t.Errorf("Check(%q) error %v is not ErrWeak", tt.v, err)
			}
		})
	}
}
