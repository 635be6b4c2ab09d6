//go:build unix

package apikey

import (
	"context"
	"crypto/sha256"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// BenchmarkReread is the background re-read of 500 cached keys that fell
// due, on a real redis-server: one lookup each (what a store without
// batches gets, as the keys fall due one by one) against Run's batches.
// cpu-µs/key is this process's CPU time (user + system, so the syscalls
// count) per key re-read; redis-server's own CPU is not in it. ns/op and
// allocs/op are per 500 keys.
func BenchmarkReread(b *testing.B) {
	const n = 500
	srv := redistest.Start(b)
	s := NewRedisStore(newRedisClient(b, srv.URL()), testStrategy, nil)
	m := NewManager(s, ManagerOptions{})
	ctx := context.Background()
	sums := make([][32]byte, n)
	for i := range n {
		key, _, err := m.Create(ctx, CreateParams{Name: fmt.Sprint("svc-", i), Roles: []string{"a", "b"}, Scopes: []string{"x"}})
		if err != nil {
			b.Fatal(err)
		}
		sums[i] = sha256.Sum256([]byte(key))
	}
	v, err := NewVerifier(s, VerifierOptions{Prefixes: []string{"pk_live"}, LastUsedInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"one-by-one", "batched"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				if mode == "batched" {
					v.mu.Lock()
					v.rereads = append(v.rereads[:0], sums...)
					v.mu.Unlock()
					if _, err := v.rereadQueued(ctx); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, sum := range sums { // one after another, as keys fall due
					if res := <-v.startLookup(ctx, sum); res.Err != nil {
						b.Fatal(res.Err)
					}
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N*n), "cpu-µs/key")
		})
	}
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
