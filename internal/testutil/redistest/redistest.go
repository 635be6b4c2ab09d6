// Package redistest starts a real redis-server for tests, on a free loopback port.
//
// When redis-server is not installed the test is skipped, unless
// AUTHGATEWAY_REQUIRE_REDIS=1 is set (as .ci/run does), in which case it fails.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authgateway/authgateway/internal/testutil/poll"
)

// Server is a redis-server process owned by one test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	argv []string // the whole command line after the binary
	Port int
	cmd  *exec.Cmd
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is a redis:// URL for the server, as redis.url takes it.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Start starts a fresh redis-server and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t)
}

// StartWith is Start with more redis-server arguments, given after the
// defaults (a later option wins): a config to include, a password.
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	s := newServer(t)
	// No persistence: every test starts from an empty store; appendonly would
	// only slow the tests down.
	s.argv = append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "yes"}, args...)
	s.start()
	return s
}

// newServer finds redis-server (skipping or failing the test without it)
// and picks a port and a directory; the caller sets argv and starts it.
func newServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: LookPath(t, "redis-server"), dir: t.TempDir(), Port: freePort(t)}
	t.Cleanup(s.Stop)
	return s
}

// LookPath finds a Redis binary (redis-server, redis-cli). Without it the
// test is skipped, unless AUTHGATEWAY_REQUIRE_REDIS=1, which makes it a
// failure.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("AUTHGATEWAY_REQUIRE_REDIS") == "1" {
			t.Fatalf("%s not found and AUTHGATEWAY_REQUIRE_REDIS=1: %v", name, err)
		}
		t.Skipf("%s not installed; set AUTHGATEWAY_REQUIRE_REDIS=1 to make this a failure", name)
	}
	return bin
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.argv...)
	logf, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatalf("creating redis log: %v", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	_, err = poll.Wait(10*time.Second, func() error {
		if reply := ping(s.Addr()); reply != "+PONG" && !strings.HasPrefix(reply, "-NOAUTH") {
			return fmt.Errorf("PING answered %q", reply)
		}
		return nil
	})
	if err != nil {
		s.Stop()
		s.t.Fatalf("redis-server on %s: %v", s.Addr(), err)
	}
}

// Stop kills the server (idempotent). Data is lost: there is no persistence.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Running reports whether the server was started and not stopped since.
func (s *Server) Running() bool { return s.cmd != nil }

// Restart starts the server again on the same port after Stop: empty data,
// unless its arguments turn persistence on (cluster nodes do).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Ping reports whether a redis-server at addr answers PING.
func Ping(addr string) bool { return ping(addr) == "+PONG" }

// ping sends PING to addr without a password and returns the reply line
// ("+PONG", "-NOAUTH ..." from a server that needs a password), or "".
func ping(addr string) string {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return ""
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return ""
	}
	return strings.TrimRight(line, "\r\n")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
