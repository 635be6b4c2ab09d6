// Package deadaddr gives tests a loopback address where nothing listens,
// and where nothing the tests start will: closing a listener on :0 frees a
// port that the next listener on :0 (a gateway, an upstream of another
// test) may be given, and a "dead" upstream would then answer.
package deadaddr

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Below Linux's default ephemeral range (32768–60999), where listeners on
// :0 get their ports; above the well-known ports.
const lo, hi = 10000, 32768

// New returns host:port on 127.0.0.1 that refuses connections: a port
// below the ephemeral range, checked to refuse.
func New(t testing.TB) string {
	t.Helper()
	for range 200 {
		addr := "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			continue
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return addr
		}
	}
	t.Fatal("no refusing loopback port found below the ephemeral range")
	return ""
}
