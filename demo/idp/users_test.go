package idp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"
)

func TestNewUser(t *testing.T) {
	t.Parallel()
	roles := []string{"sales"}
	u, secret, err := NewUser("alice", "correct horse", roles)
	if err != nil {
		t.Fatal(err)
	}
	roles[0] = "changed"
	if err := bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("correct horse")); err != nil {
		t.Errorf("password hash does not match the password: %v", err)
	}
	if strings.Contains(u.PasswordHash, "correct horse") {
		t.Error("password stored in clear")
	}
	if secret != u.TOTPSecret {
		t.Errorf("returned secret %q differs from the user's %q", secret, u.TOTPSecret)
	}
	if _, err := decodeTOTPSecret(secret); err != nil {
		t.Errorf("TOTP secret %q: %v", secret, err)
	}
	want := User{Username: "alice", PasswordHash: u.PasswordHash, Email: "alice@example.com", Roles: []string{"sales"}, TOTPSecret: secret}
	if diff := cmp.Diff(u, want); diff != "" {
		t.Errorf("NewUser (-got +want):\n%s", diff)
	}
	if err := (Config{Issuer: "https://localhost:8444", Users: []User{u}, Clients: []Client{{ID: "c", RedirectURIs: []string{"https://localhost/cb"}}}}).Validate(); err != nil {
		t.Errorf("a NewUser user does not validate: %v", err)
	}
	_, other, err := NewUser("bob", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if other == secret {
		t.Error("two users got the same TOTP secret")
	}
	if _, _, err := NewUser("", "pw", nil); err == nil {
		t.Error("NewUser without a username succeeded")
	}
}

func TestSaveLoadUsers(t *testing.T) {
	t.Parallel()
	users := []User{
		{Username: "alice", PasswordHash: "$2a$04$hash", Email: "alice@example.com", Roles: []string{"sales"}, TOTPSecret: "JBSWY3DPEHPK3PXP"},
		{Username: "dave", PasswordHash: "$2a$04$hash2", Roles: []string{}, TOTPSecret: "JBSWY3DPEHPK3PXQ", AlwaysMFA: true},
	}
	path := filepath.Join(t.TempDir(), "users.json")
	if err := SaveUsers(path, users); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("users file mode = %o, want 600", mode)
	}
	got, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, users); diff != "" {
		t.Errorf("LoadUsers(SaveUsers(users)) (-got +want):\n%s", diff)
	}
	// Saving again replaces the file.
	if err := SaveUsers(path, users[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadUsers(path); err != nil || len(got) != 1 {
		t.Errorf("after second save: %d users, %v", len(got), err)
	}
}

func TestLoadUsersRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, content string }{
		{"unknown field", `{"users":[{"username":"a","password":"plain"}]}`},
		{"not json", `users: []`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "users.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadUsers(path); err == nil {
				t.Errorf("LoadUsers(%s) succeeded", tt.content)
			}
		})
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadUsers(missing file) succeeded")
	}
}
