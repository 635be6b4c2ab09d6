//go:build !unix

package filestamp

import "io/fs"

// Stamp identifies one version of a file; the zero Stamp is a missing file.
type Stamp struct {
	size  int64
	mtime int64
}

func of(fi fs.FileInfo) Stamp { return Stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()} }
