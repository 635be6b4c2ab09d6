// Package filestamp identifies one version of a file by what one stat
// tells (inode, size, modification and change times), so that a reader can
// tell at the cost of a stat whether the file it parsed is still the one on
// disk: an atomic replace makes a new inode, and an edit in place moves the
// size or the times.
package filestamp

import "io/fs"

// Of is the stamp of the file fi describes.
func Of(fi fs.FileInfo) Stamp { return of(fi) }
