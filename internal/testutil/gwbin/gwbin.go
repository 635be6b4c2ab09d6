// Package gwbin builds the authgateway binary for tests that run it as a
// process (test/e2e, test/browser), and collects such a process's output.
package gwbin

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Build compiles ./cmd/authgateway into a new temp dir (race: with the race
// detector) and returns the binary's path and a function removing the dir.
func Build(race bool) (bin string, cleanup func(), err error) {
	return BuildCommand("authgateway", race)
}

// BuildCommand compiles ./cmd/<name> (e.g. "demo-upstream") like Build.
func BuildCommand(name string, race bool) (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", name+"-test-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	bin = filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/"+name)...)
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("building %s: %w\n%s", name, err, out)
	}
	return bin, cleanup, nil
}

// moduleRoot is found from this file's place in the tree, so any test
// package can build wherever it lives.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// SyncBuffer is a bytes.Buffer safe for a process's writer goroutine and a
// test reading it at the same time.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
