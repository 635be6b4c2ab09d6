package idp

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/clocktest"
)

func TestGateRetryInterval(t *testing.T) {
	clk := clocktest.NewFake(time.Unix(1_800_000_000, 0))
	g := Gate[int]{Now: clk.Now}
	var attempts atomic.Int64
	down := errors.New("provider down")
	failing := func(context.Context) (int, error) { attempts.Add(1); return 0, down }
	ctx := context.Background()
	for range 5 {
		if _, err := g.Do(ctx, failing); !errors.Is(err, down) {
			t.Fatalf("Do = %v; want the last attempt's error", err)
		}
	}
	if n := attempts.Load(); n != 1 {
		t.Fatalf("attempts within RetryInterval = %d; want 1", n)
	}
	clk.Advance(RetryInterval)
	if v, err := g.Do(ctx, func(context.Context) (int, error) { attempts.Add(1); return 7, nil }); v != 7 || err != nil {
		t.Fatalf("Do after RetryInterval = %d, %v; want a new attempt's 7", v, err)
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("attempts = %d; want 2", n)
	}
}

// TestGateSharesAttempt runs in a synctest bubble so that every caller is
// known to be inside Do, waiting on the one attempt, before it ends.
func TestGateSharesAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Gate[int]
		var attempts atomic.Int64
		release := make(chan struct{})
		attempt := func(context.Context) (int, error) {
			attempts.Add(1)
			<-release
			return 1, nil
		}
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if v, err := g.Do(context.Background(), attempt); v != 1 || err != nil {
					t.Errorf("Do = %d, %v", v, err)
				}
			})
		}
		synctest.Wait() // all 50 callers are blocked in Do
		if n := attempts.Load(); n != 1 {
			t.Fatalf("attempts with 50 callers waiting = %d; want 1", n)
		}
		// A caller that leaves gets its context's error; the attempt goes on
		// for those who wait.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := g.Do(ctx, attempt); !errors.Is(err, context.Canceled) {
			t.Fatalf("Do with a canceled context = %v", err)
		}
		close(release)
		wg.Wait()
		if n := attempts.Load(); n != 1 {
			t.Fatalf("attempts = %d; want 1 shared by every caller", n)
		}
	})
}

func TestLazy(t *testing.T) {
	clk := clocktest.NewFake(time.Unix(1_800_000_000, 0))
	var attempts atomic.Int64
	up := atomic.Bool{}
	l := NewLazy(clk.Now, func(context.Context) (*string, error) {
		attempts.Add(1)
		if !up.Load() {
			return nil, errors.New("down")
		}
		v := "discovered"
		return &v, nil
	})
	ctx := context.Background()
	if v, err := l.Get(ctx); v != nil || err == nil {
		t.Fatalf("Get while down = %v, %v; want an error (fail closed)", v, err)
	}
	up.Store(true)
	if _, err := l.Get(ctx); err == nil {
		t.Fatal("Get within RetryInterval of the failure tried again")
	}
	clk.Advance(RetryInterval)
	for range 3 {
		clk.Advance(RetryInterval)
		if v, err := l.Get(ctx); err != nil || *v != "discovered" {
			t.Fatalf("Get = %v, %v", v, err)
		}
	}
	if n := attempts.Load(); n != 2 {
		t.Fatalf("attempts = %d; want 2 (kept once got)", n)
	}
}
