package apikey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.yaml.in/yaml/v3"

	"github.com/authgateway/authgateway/internal/filestamp"
)

// maxFileSize bounds how much of the keys file is read: a few hundred bytes
// per key, so 64 MiB is far beyond any real file.
const maxFileSize = 64 << 20

// defaultPollInterval is how often Watch re-checks the file in case a change
// notification was missed (network file systems, dropped inotify events).
const defaultPollInterval = 2 * time.Second

const fileHeader = "# API keys of authgateway, managed with `authgateway keys`.\n" +
	"# Only SHA-256 hashes of keys are stored here, never a key.\n"

// FileStore keeps records in a YAML file (`keys: [...]`), for one gateway or
// several sharing a file system with the CLI.
//
// Writes are read-modify-write under an exclusive flock on a sibling
// "<file>.lock" file, so the CLI and running gateways never lose each
// other's writes (a revocation is never overwritten by a last-used update),
// and each write replaces the file atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory): a reader sees the old
// file or the new one, never half of one.
//
// Reads come from an in-memory copy that is reloaded when the file's
// identity (inode, size, modification and change times) differs from the
// one loaded, checked with one stat per read; a write always re-reads the
// file under the lock, whatever the stat says. Watch (see Notifier) reacts
// to changes at once through fsnotify on the directory, and re-checks
// every 2s in case an event was missed.
//
// A missing file is an empty store; the first write creates it with mode
// 0600 (a rewrite keeps the existing file's mode), and its directory if
// needed. A symlink is followed to its target when the store is made.
// Because each write renames a new file into place, the directory must be
// writable: in a container, mount the directory, not the file alone (a
// bind-mounted file cannot be replaced by rename). A file that does not
// parse, or holds an invalid record, is an error on every read: the store
// fails closed rather than guess.
type FileStore struct {
	path     string
	lockPath string

	pollInterval time.Duration

	// writeMu orders this instance's writers before they contend for the
	// flock, which is what excludes other instances and processes.
	writeMu sync.Mutex
	enc     fileEncoder // guarded by writeMu

	mu   sync.Mutex
	snap *fileSnapshot
}

// NewFileStore returns a store on the YAML file at path. It does no I/O.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("api key file store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("api key file store: %w", err)
	}
	// Write through a symlink to its target rather than replace the link.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return &FileStore{path: abs, lockPath: abs + ".lock", pollInterval: defaultPollInterval}, nil
}

// Path is the absolute path of the keys file.
func (s *FileStore) Path() string { return s.path }

type fileDoc struct {
	Keys []*Record `yaml:"keys"`
}

// fileSnapshot is one parsed version of the file; never modified once built.
type fileSnapshot struct {
	stamp  fileStamp
	recs   []*Record
	byID   map[string]*Record
	byHash map[string]*Record
	perm   fs.FileMode
}

func newSnapshot(stamp fileStamp, recs []*Record, perm fs.FileMode) (*fileSnapshot, error) {
	s := &fileSnapshot{stamp: stamp, recs: recs, perm: perm,
		byID: make(map[string]*Record, len(recs)), byHash: make(map[string]*Record, len(recs))}
	for i, r := range recs {
		if r == nil {
			return nil, fmt.Errorf("keys[%d]: empty entry", i)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if _, dup := s.byID[r.ID]; dup {
			return nil, fmt.Errorf("keys[%d]: duplicate id %q", i, r.ID)
		}
		if _, dup := s.byHash[r.Hash]; dup {
			return nil, fmt.Errorf("keys[%d] (%s): duplicate hash", i, r.ID)
		}
		s.byID[r.ID] = r
		s.byHash[r.Hash] = r
	}
	return s, nil
}

func parseSnapshot(data []byte, stamp fileStamp, perm fs.FileMode) (*fileSnapshot, error) {
	var doc fileDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return newSnapshot(stamp, doc.Keys, perm)
}

// load returns the current snapshot, re-reading the file if its stamp moved.
func (s *FileStore) load() (*fileSnapshot, error) {
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.setMissing(), nil
	case err != nil:
		return nil, fmt.Errorf("reading api key file: %w", err)
	}
	s.mu.Lock()
	cur := s.snap
	s.mu.Unlock()
	if cur != nil && cur.stamp == stampOf(fi) {
		return cur, nil
	}
	return s.reload()
}

// reload reads and parses the file whatever its stamp says.
func (s *FileStore) reload() (*fileSnapshot, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s.setMissing(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading api key file: %w", err)
	}
	defer f.Close()
	// The stamp comes from the open file, so it describes exactly the bytes
	// read even if the path is replaced meanwhile.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading api key file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading api key file: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("reading api key file: larger than %d bytes", maxFileSize)
	}
	snap, err := parseSnapshot(data, stampOf(fi), fi.Mode().Perm())
	if err != nil {
		return nil, fmt.Errorf("parsing api key file %s: %w", s.path, err)
	}
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	return snap, nil
}

func (s *FileStore) setMissing() *fileSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil || s.snap.stamp != (fileStamp{}) {
		s.snap, _ = newSnapshot(fileStamp{}, nil, 0o600)
	}
	return s.snap
}

// fileStamp identifies one version of the keys file.
type fileStamp = filestamp.Stamp

func stampOf(fi fs.FileInfo) fileStamp { return filestamp.Of(fi) }

// errNoChange lets a mutation skip the write.
var errNoChange = errors.New("no change")

// update runs mutate on a fresh copy of the records under the file lock and
// writes the result atomically.
func (s *FileStore) update(ctx context.Context, mutate func(recs []*Record) ([]*Record, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("creating api key file directory: %w", err)
	}
	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return fmt.Errorf("locking api key file: %w", err)
	}
	defer unlock()

	// Under the lock every other writer is excluded; load re-reads the file
	// if its stamp (device, inode, size, mtime, ctime) moved since it was
	// last parsed, as every read does, and otherwise reuses that parse.
	cur, err := s.load()
	if err != nil {
		return err
	}
	recs := make([]*Record, len(cur.recs))
	for i, r := range cur.recs {
		recs[i] = r.Clone()
	}
	recs, err = mutate(recs)
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	// Validate before writing so a bad record never reaches the file.
	snap, err := newSnapshot(fileStamp{}, recs, cur.perm)
	if err != nil {
		return err
	}
	data, err := s.enc.encode(recs)
	if err != nil {
		return err
	}
	written, err := writeAtomic(s.path, data, cur.perm)
	if err != nil {
		return fmt.Errorf("writing api key file: %w", err)
	}
	// Still under the lock. If the path is still the file just written, the
	// records in memory are its content: keep them under its stamp instead
	// of parsing the file again (with 1,000 keys that parse is 20 ms of CPU,
	// once a minute for last-used times). Anything else there is read.
	if fi, err := os.Stat(s.path); err == nil && os.SameFile(fi, written) {
		snap.stamp = stampOf(fi)
		s.mu.Lock()
		s.snap = snap
		s.mu.Unlock()
		return nil
	}
	_, err = s.reload()
	return err
}

// writeAtomic replaces path with data (a temp file renamed over it, both
// synced) and returns the new file's info, for os.SameFile.
func writeAtomic(path string, data []byte, perm fs.FileMode) (fs.FileInfo, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return nil, err
	}
	if _, err := tmp.Write(data); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	fi, err := tmp.Stat()
	if err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	done = true
	// The rename is durable only once the directory entry is on disk.
	return fi, syncDir(dir)
}

// Create implements Store.
func (s *FileStore) Create(ctx context.Context, rec *Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	return s.update(ctx, func(recs []*Record) ([]*Record, error) {
		for _, r := range recs {
			if r.ID == rec.ID || r.Hash == rec.Hash {
				return nil, fmt.Errorf("creating %s: %w", rec.ID, ErrExists)
			}
		}
		return append(recs, rec.Clone()), nil
	})
}

// Get implements Store.
func (s *FileStore) Get(_ context.Context, id string) (*Record, error) {
	snap, err := s.load()
	if err != nil {
		return nil, err
	}
	r, ok := snap.byID[id]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// GetByHash implements Store.
func (s *FileStore) GetByHash(_ context.Context, hash string) (*Record, error) {
	snap, err := s.load()
	if err != nil {
		return nil, err
	}
	r, ok := snap.byHash[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// List implements Store.
func (s *FileStore) List(_ context.Context) ([]*Record, error) {
	snap, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]*Record, len(snap.recs))
	for i, r := range snap.recs {
		out[i] = r.Clone()
	}
	sortRecords(out)
	return out, nil
}

// Revoke implements Store.
func (s *FileStore) Revoke(ctx context.Context, id string, at time.Time) error {
	return s.modify(ctx, id, func(r *Record) bool {
		if r.Revoked() {
			return false
		}
		r.RevokedAt = at.UTC()
		return true
	})
}

// SetExpiry implements Store.
func (s *FileStore) SetExpiry(ctx context.Context, id string, at time.Time) error {
	return s.modify(ctx, id, func(r *Record) bool {
		r.ExpiresAt = at.UTC()
		return true
	})
}

func (s *FileStore) modify(ctx context.Context, id string, fn func(*Record) bool) error {
	return s.update(ctx, func(recs []*Record) ([]*Record, error) {
		for _, r := range recs {
			if r.ID == id {
				if !fn(r) {
					return nil, errNoChange
				}
				return recs, nil
			}
		}
		return nil, ErrNotFound
	})
}

// TouchLastUsed implements Store.
func (s *FileStore) TouchLastUsed(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.update(ctx, func(recs []*Record) ([]*Record, error) {
		changed := false
		for _, r := range recs {
			if t, ok := used[r.ID]; ok && t.After(r.LastUsedAt) {
				r.LastUsedAt = t.UTC()
				changed = true
			}
		}
		if !changed {
			return nil, errNoChange
		}
		return recs, nil
	})
}

// Watch implements Notifier: it evicts the hashes of records that were
// added, removed or changed in anything but LastUsedAt, and flushes
// everything when it starts and whenever the file cannot be read.
func (s *FileStore) Watch(ctx context.Context, evict func(hash string), flushAll func()) error {
	flushAll()
	prev, _ := s.load()

	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		// Watch the directory, not the file: an atomic replace makes a new
		// inode that a watch on the old file would not follow. The directory
		// is created if missing (the first `keys create` would create it
		// later, unseen, leaving only the slow poll).
		dir := filepath.Dir(s.path)
		_ = os.MkdirAll(dir, 0o700)
		if err := w.Add(dir); err == nil {
			events, errs = w.Events, w.Errors
		}
	}
	tick := time.NewTicker(s.pollInterval)
	defer tick.Stop()

	check := func() {
		cur, err := s.load()
		if err != nil {
			if prev != nil {
				flushAll()
			}
			prev = nil
			return
		}
		if cur == prev {
			return
		}
		if prev == nil {
			flushAll()
		} else {
			for _, h := range changedHashes(prev, cur) {
				evict(h)
			}
		}
		prev = cur
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Base(ev.Name) == filepath.Base(s.path) {
				check()
			}
		case _, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflow means events were lost: start from a clean slate.
			flushAll()
			prev = nil
			check()
		case <-tick.C:
			check()
		}
	}
}

// changedHashes lists the hashes whose record differs between a and b in
// anything a Verifier caches (everything but LastUsedAt).
func changedHashes(a, b *fileSnapshot) []string {
	var out []string
	same := func(x, y *Record) bool {
		return x.ID == y.ID && x.Name == y.Name && x.Prefix == y.Prefix &&
			slices.Equal(x.Roles, y.Roles) && slices.Equal(x.Scopes, y.Scopes) &&
			x.CreatedAt.Equal(y.CreatedAt) && x.ExpiresAt.Equal(y.ExpiresAt) && x.RevokedAt.Equal(y.RevokedAt)
	}
	for h, x := range a.byHash {
		if y, ok := b.byHash[h]; !ok || !same(x, y) {
			out = append(out, h)
		}
	}
	for h := range b.byHash {
		if _, ok := a.byHash[h]; !ok {
			out = append(out, h)
		}
	}
	return out
}

func sortRecords(recs []*Record) {
	slices.SortStableFunc(recs, func(a, b *Record) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
}

var (
	_ Store    = (*FileStore)(nil)
	_ Notifier = (*FileStore)(nil)
)
