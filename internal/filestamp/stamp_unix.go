//go:build unix

package filestamp

import (
	"io/fs"
	"syscall"
)

// Stamp identifies one version of a file; the zero Stamp is a missing file.
type Stamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds
}

func of(fi fs.FileInfo) Stamp {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	}
	return Stamp{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtime: fi.ModTime().UnixNano(), ctime: ctimeOf(st),
	}
}
