package idp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// totpIssuer names the provider in authenticator apps.
const totpIssuer = "crmgate demo"

// NewUser makes a user with a bcrypt hash of password, the email
// username@example.com and a fresh random TOTP secret, which it also returns
// in plain (base32) for the demo to hand to the person or script signing in.
func NewUser(username, password string, roles []string) (User, string, error) {
	if username == "" || password == "" {
		return User{}, "", errors.New("idp: username and password are required")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return User{}, "", fmt.Errorf("idp: hash password: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: username})
	if err != nil {
		return User{}, "", fmt.Errorf("idp: totp secret: %w", err)
	}
	u := User{
		Username:     username,
		PasswordHash: string(hash),
		Email:        username + "@example.com",
		Roles:        slices.Clone(roles),
		TOTPSecret:   key.Secret(),
	}
	return u, key.Secret(), nil
}

// usersFile is the on-disk form of a users file.
type usersFile struct {
	Users []User `json:"users"`
}

// LoadUsers reads a users file written by [SaveUsers].
func LoadUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("idp: users file: %w", err)
	}
	var f usersFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("idp: users file %s: %w", path, err)
	}
	return f.Users, nil
}

// SaveUsers writes users to path as JSON with mode 0600, replacing the file
// atomically. The file holds password hashes, never passwords, but it does
// hold the TOTP secrets, which the provider needs in plain to verify codes.
func SaveUsers(path string, users []User) error {
	b, err := json.MarshalIndent(usersFile{Users: users}, "", "  ")
	if err != nil {
		return fmt.Errorf("idp: users file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*.json")
	if err != nil {
		return fmt.Errorf("idp: users file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("idp: users file: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("idp: users file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("idp: users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("idp: users file: %w", err)
	}
	return nil
}
