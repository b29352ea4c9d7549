//go:build !unix

package apikey

import (
	"context"
	"errors"
	"fmt"
)

// lockFile is unsupported here: without flock the CLI and a running
// gateway could lose each other's writes. Use the Redis store.
func lockFile(ctx context.Context, path string) (func(), error) {
	return nil, fmt.Errorf("locking %s: %w", path, errors.ErrUnsupported)
}

func syncDir(string) error { return nil }
