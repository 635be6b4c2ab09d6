package apikey

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

func TestFileStoreMissingFileIsEmptyAndCreated0600(t *testing.T) {
	ctx := context.Background()
	s := newTestFileStore(t)
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List on a missing file = %v, %v; want empty", list, err)
	}
	if _, err := s.GetByHash(ctx, Hash("x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetByHash on a missing file: %v; want ErrNotFound", err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading created the file: %v", err)
	}
	_, r := newKeyRecord(t, "alpha", time.Now())
	if err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.Path(), s.Path() + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode of %s = %o; want 600", filepath.Base(p), got)
		}
	}
	raw, _ := os.ReadFile(s.Path())
	if !strings.Contains(string(raw), "keys:") || !strings.Contains(string(raw), r.Hash) {
		t.Errorf("file does not hold `keys:` with the record:\n%s", raw)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries; want the file and its lock (no temp files left)", len(entries))
	}
}

func TestFileStoreKeepsExistingMode(t *testing.T) {
	s := newTestFileStore(t)
	if err := os.WriteFile(s.Path(), []byte("keys: []\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, r := newKeyRecord(t, "alpha", time.Now())
	if err := s.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(s.Path())
	if got := fi.Mode().Perm(); got != 0o640 {
		t.Errorf("mode = %o; want the existing 640", got)
	}
}

func TestFileStoreNoPlaintext(t *testing.T) {
	ctx := context.Background()
	s := newTestFileStore(t)
	m := NewManager(s, ManagerOptions{})
	var keys []string
	for i := range 3 {
		key, rec, err := m.Create(ctx, CreateParams{Name: fmt.Sprint("svc", i), Roles: []string{"r"}, ExpiresIn: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		if err := s.TouchLastUsed(ctx, map[string]time.Time{rec.ID: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Rotate(ctx, mustList(t, s)[0].ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, mustList(t, s)[1].ID); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(filepath.Dir(s.Path()), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			secret := k[len(k)-43:]
			if strings.Contains(string(raw), k) || strings.Contains(string(raw), secret) {
				t.Fatalf("%s contains a plaintext key", e.Name())
			}
		}
	}
}

func TestFileStorePicksUpExternalChanges(t *testing.T) {
	ctx := context.Background()
	a := newTestFileStore(t)
	b, _ := NewFileStore(a.Path())
	_, r := newKeyRecord(t, "alpha", time.Now())
	if err := a.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetByHash(ctx, r.Hash); err != nil {
		t.Fatalf("second instance does not see the create: %v", err)
	}
	if err := a.Revoke(ctx, r.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetByHash(ctx, r.Hash)
	if err != nil || !got.Revoked() {
		t.Fatalf("second instance does not see the revocation: %+v, %v", got, err)
	}

	// A human editing the file without the lock (same size, new content).
	raw, _ := os.ReadFile(a.Path())
	edited := strings.Replace(string(raw), "name: alpha", "name: omega", 1)
	if err := os.WriteFile(a.Path(), []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = b.Get(ctx, r.ID)
	if err != nil || got.Name != "omega" {
		t.Fatalf("edited name not picked up: %+v, %v", got, err)
	}
	// The file removed: an empty store again.
	if err := os.Remove(a.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the file was removed: %v; want ErrNotFound", err)
	}
}

// TestFileStoreBadFileFailsClosed: a file that cannot be trusted is an error
// on every read (not "unknown key", not "empty"), and is never overwritten.
func TestFileStoreBadFileFailsClosed(t *testing.T) {
	key, r := newKeyRecord(t, "alpha", time.Now())
	good := func(mod func(string) string) string {
		return mod(fmt.Sprintf("keys:\n  - id: %s\n    name: alpha\n    prefix: pk_live\n    hash: %s\n    roles: [reader]\n    created_at: 2026-01-01T00:00:00Z\n", r.ID, r.Hash))
	}
	same := func(s string) string { return s }
	t.Run("the base file is valid", func(t *testing.T) {
		s := newTestFileStore(t)
		if err := os.WriteFile(s.Path(), []byte(good(same)), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetByHash(context.Background(), r.Hash); err != nil {
			t.Fatalf("GetByHash on the valid base file: %v", err)
		}
	})
	tests := []struct {
		name string
		body string
	}{
		{"not yaml", "keys: [\x00"},
		{"unknown field", good(func(s string) string { return s + "    plaintext: nope\n" })},
		{"unknown top-level field", good(same) + "extra: 1\n"},
		{"role with a comma", good(func(s string) string { return strings.Replace(s, "[reader]", "[\"reader,admin\"]", 1) })},
		{"bad hash", good(func(s string) string { return strings.Replace(s, r.Hash, "nothex", 1) })},
		{"duplicate", good(same) + strings.TrimPrefix(good(same), "keys:\n")},
		{"name with newline", good(func(s string) string { return strings.Replace(s, "name: alpha", "name: \"al\\npha\"", 1) })},
		{"empty entry", "keys:\n  -\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newTestFileStore(t)
			if err := os.WriteFile(s.Path(), []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetByHash(ctx, r.Hash); err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("GetByHash: %v; want a technical error", err)
			}
			v, err := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, key)
			if err == nil || errors.Is(err, ErrUnknown) || errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify on a bad file: %v; want a technical error", err)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error %q contains the key", err)
			}
			_, other := newKeyRecord(t, "beta", time.Now())
			if err := s.Create(ctx, other); err == nil {
				t.Fatal("Create on a bad file succeeded; want it refused")
			}
			if raw, _ := os.ReadFile(s.Path()); string(raw) != tt.body {
				t.Fatal("the bad file was overwritten")
			}
		})
	}
}

// TestFileStoreTwoInstancesConcurrent: two FileStores on one file (as the
// CLI and a gateway), one revoking while the other writes last-used times
// of the same keys. No revocation may be lost.
func TestFileStoreTwoInstancesConcurrent(t *testing.T) {
	ctx := context.Background()
	cli := newTestFileStore(t)
	gw, _ := NewFileStore(cli.Path())
	var recs []*Record
	for i := range 10 {
		_, r := newKeyRecord(t, fmt.Sprint("k", i), time.Now())
		if err := cli.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, r := range recs {
			if err := cli.Revoke(ctx, r.ID, time.Now()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Go(func() {
		for i := range 10 {
			used := map[string]time.Time{}
			for _, r := range recs {
				used[r.ID] = time.Now().Add(time.Duration(i) * time.Second)
			}
			if err := gw.TouchLastUsed(ctx, used); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	for _, r := range mustList(t, gw) {
		if !r.Revoked() {
			t.Errorf("revocation of %s lost", r.Name)
		}
		if r.LastUsedAt.IsZero() {
			t.Errorf("last used of %s lost", r.Name)
		}
	}
}

// TestFileStoreCrossProcess runs writers in separate processes (this test
// binary re-executed) next to one in this process, all on one file.
func TestFileStoreCrossProcess(t *testing.T) {
	const procs, perProc = 2, 5
	s := newTestFileStore(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFileWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(), "APIKEY_HELPER_FILE="+s.Path(),
				"APIKEY_HELPER_N="+strconv.Itoa(perProc), "APIKEY_HELPER_NAME=proc"+strconv.Itoa(p))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper process %d: %v\n%s", p, err, out)
			}
		})
	}
	wg.Go(func() {
		for i := range perProc {
			_, r := newKeyRecord(t, fmt.Sprint("local-", i), time.Now())
			if err := s.Create(ctx, r); err != nil {
				t.Error(err)
			}
			if err := s.Revoke(ctx, r.ID, time.Now()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	list := mustList(t, s)
	if len(list) != (procs+1)*perProc {
		t.Fatalf("file holds %d records; want %d: %v", len(list), (procs+1)*perProc, names(list))
	}
	for _, r := range list {
		if !r.Revoked() {
			t.Errorf("revocation of %s lost", r.Name)
		}
	}
}

// TestHelperFileWriter is the body of TestFileStoreCrossProcess's child
// processes; it does nothing when run normally.
func TestHelperFileWriter(t *testing.T) {
	path := os.Getenv("APIKEY_HELPER_FILE")
	if path == "" {
		t.Skip("helper process only")
	}
	n, _ := strconv.Atoi(os.Getenv("APIKEY_HELPER_N"))
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range n {
		_, r := newKeyRecord(t, fmt.Sprint(os.Getenv("APIKEY_HELPER_NAME"), "-", i), time.Now())
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, r.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileStoreLockHonoursContext(t *testing.T) {
	s := newTestFileStore(t)
	unlock, err := lockFile(context.Background(), s.Path()+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, r := newKeyRecord(t, "alpha", time.Now())
	if err := s.Create(ctx, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create while another holds the lock, ctx cancelled: %v; want context.Canceled", err)
	}
}

func TestFileStoreWatch(t *testing.T) {
	ctx := context.Background()
	s := newTestFileStore(t)
	other, _ := NewFileStore(s.Path())
	_, a := newKeyRecord(t, "alpha", time.Now())
	_, b := newKeyRecord(t, "beta", time.Now())
	for _, r := range []*Record{a, b} {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var events []string
	record := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	seen := func(e string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range events {
			if x == e {
				return true
			}
		}
		return false
	}
	reset := func() {
		mu.Lock()
		events = nil
		mu.Unlock()
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- s.Watch(wctx, func(h string) { record(h) }, func() { record("flush") }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	}()
	poll.True(t, 5*time.Second, "flush at start", func() bool { return seen("flush") })
	reset()

	// Last-used updates do not invalidate anything; a revocation by another
	// instance evicts exactly that key. The revocation is made after the
	// touch, so seeing it proves the touch was processed first.
	if err := other.TouchLastUsed(ctx, map[string]time.Time{b.ID: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(ctx, a.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "evict revoked key", func() bool { return seen(a.Hash) })
	if seen(b.Hash) || seen("flush") {
		t.Errorf("events %v; want only the revoked key's hash", events)
	}

	// A broken file flushes everything; so does its repair.
	raw, _ := os.ReadFile(s.Path())
	reset()
	if err := os.WriteFile(s.Path(), []byte("keys: [broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "flush on broken file", func() bool { return seen("flush") })
	reset()
	if err := os.WriteFile(s.Path(), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 5*time.Second, "flush on repaired file", func() bool { return seen("flush") })
}

func mustList(t *testing.T, s Store) []*Record {
	t.Helper()
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestFileStoreCreatesDirectoryAndFollowsSymlink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Run("missing directory", func(t *testing.T) {
		s, err := NewFileStore(filepath.Join(dir, "new", "keys.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		_, r := newKeyRecord(t, "alpha", time.Now())
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		target := filepath.Join(dir, "target.yaml")
		if err := os.WriteFile(target, []byte("keys: []\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "link.yaml")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		s, _ := NewFileStore(link)
		_, r := newKeyRecord(t, "alpha", time.Now())
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the symlink was replaced: %v, %v", fi.Mode(), err)
		}
		raw, _ := os.ReadFile(target)
		if !strings.Contains(string(raw), r.Hash) {
			t.Fatal("the write did not reach the symlink's target")
		}
	})
}
