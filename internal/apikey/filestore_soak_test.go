package apikey

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFileStoreRevocationsSurviveGatewayWrites: a gateway's store (watching
// the file, writing last-used times as fast as it can, looking keys up)
// next to three CLI processes creating and revoking keys. Writes reuse the
// last parse when the file's stamp has not moved and keep what they wrote
// instead of reading it back: no revocation may be lost either way.
func TestFileStoreRevocationsSurviveGatewayWrites(t *testing.T) {
	s := newTestFileStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Watch(ctx, func(string) {}, func() {}) }()
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			recs, err := s.List(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			used := map[string]time.Time{}
			for _, r := range recs {
				used[r.ID] = time.Now()
			}
			if err := s.TouchLastUsed(ctx, used); err != nil {
				t.Error(err)
			}
			for _, r := range recs {
				_, _ = s.GetByHash(ctx, r.Hash)
			}
		}
	})
	var pw sync.WaitGroup
	for p := range 3 {
		pw.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFileWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(), "APIKEY_HELPER_FILE="+s.Path(), "APIKEY_HELPER_N=30", "APIKEY_HELPER_NAME=p"+strconv.Itoa(p))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper %d: %v\n%s", p, err, out)
			}
		})
	}
	pw.Wait()
	stop.Store(true)
	wg.Wait()
	list := mustList(t, s)
	if len(list) != 90 {
		t.Fatalf("file holds %d records, want 90: %v", len(list), names(list))
	}
	for _, r := range list {
		if !r.Revoked() {
			t.Errorf("revocation of %s lost", r.Name)
		}
	}
}
