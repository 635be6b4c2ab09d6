//go:build !unix

package apikey

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
)

type fileStamp struct {
	size  int64
	mtime int64
}

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// lockFile is not implemented off unix: without a cross-process lock the
// file store could lose a revocation, so it refuses to write.
func lockFile(context.Context, string) (func(), error) {
	return nil, fmt.Errorf("file store writes need flock (unix only): %w", errors.ErrUnsupported)
}

func syncDir(string) error { return nil }
