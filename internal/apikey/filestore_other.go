//go:build !unix

package apikey

import (
	"context"
	"errors"
	"fmt"
)

// lockFile is not implemented off unix: without a cross-process lock the
// file store could lose a revocation, so it refuses to write.
func lockFile(context.Context, string) (func(), error) {
	return nil, fmt.Errorf("file store writes need flock (unix only): %w", errors.ErrUnsupported)
}

func syncDir(string) error { return nil }
