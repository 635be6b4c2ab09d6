//go:build unix && !linux

package filestamp

import "syscall"

// ctimeOf is 0 where Stat_t spells the field differently (Ctimespec on the
// BSDs); inode, size and mtime still identify the version.
func ctimeOf(*syscall.Stat_t) int64 { return 0 }
