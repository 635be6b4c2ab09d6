package redisconn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

// TestCheckCluster: every master answers: nil; one down: ErrDegraded naming
// it, its slots and the parts it holds (and not the others'); all down: a
// plain error; back: nil again.
func TestCheckCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	rc, err := New(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return Check(ctx, rc, Part{"sessions", "authgw:{session}:x"}, Part{"api keys of apiKey", "authgw:{apikey:apiKey}:x"})
	}
	if err := check(); err != nil {
		t.Fatalf("healthy cluster: %v", err)
	}
	dead := c.NodeFor("authgw:{session}:x")
	if dead == c.NodeFor("authgw:{apikey:apiKey}:x") {
		t.Fatal("the test needs the two parts on different masters")
	}
	dead.Stop()
	err = check()
	if !errors.Is(err, ErrDegraded) {
		t.Fatalf("one master down: %v; want ErrDegraded", err)
	}
	for _, want := range []string{"1 of 3 cluster masters unreachable", dead.Addr(), "5461 of 16384 slots", "sessions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("one master down: %q; want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "api keys") {
		t.Errorf("one master down: %q names a part held by a live master", err)
	}
	for _, n := range c.Nodes {
		n.Stop()
	}
	if err := check(); err == nil || errors.Is(err, ErrDegraded) {
		t.Fatalf("every master down: %v; want an error that is not ErrDegraded", err)
	}
	for _, n := range c.Nodes {
		n.Restart()
	}
	c.WaitHealthy()
	poll.Until(t, 10*time.Second, "Check after the masters came back", check)
}
