package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// SentinelMaster is the master name the sentinels of StartSentinel monitor.
const SentinelMaster = "authgw"

// Sentinel is a Sentinel-managed Redis on loopback: a master, one replica
// and three sentinels (quorum 2), as an operator sets one up. Every process
// is stopped when the test ends.
type Sentinel struct {
	t testing.TB
	// Data are the two data nodes: the master at the start, then its replica.
	Data      []*Server
	Sentinels []*Server
}

// StartSentinel starts the setup and waits until every sentinel knows the
// master, its replica and the other sentinels, so that a failover can be
// agreed on at once.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	s := &Sentinel{t: t}
	for i := range 2 {
		n := newServer(t)
		n.argv = []string{"--port", strconv.Itoa(n.Port), "--bind", "127.0.0.1", "--dir", n.dir,
			"--protected-mode", "yes", "--save", "", "--appendonly", "no"}
		if i == 1 {
			n.argv = append(n.argv, "--replicaof", "127.0.0.1", strconv.Itoa(s.Data[0].Port))
		}
		n.start()
		s.Data = append(s.Data, n)
	}
	for range 3 {
		n := newServer(t)
		conf := filepath.Join(n.dir, "sentinel.conf")
		// Sentinel rewrites its own config file: it must be writable.
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 5000\n"+
			"sentinel parallel-syncs %[3]s 1\n", n.Port, n.dir, SentinelMaster, s.Data[0].Port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("writing sentinel config: %v", err)
		}
		n.argv = []string{conf, "--sentinel"}
		n.start()
		s.Sentinels = append(s.Sentinels, n)
	}
	s.WaitReady()
	return s
}

// URL is the redis+sentinel:// URL of the setup, every sentinel listed.
func (s *Sentinel) URL() string {
	u := "redis+sentinel://" + s.Sentinels[0].Addr() + "?master_name=" + SentinelMaster
	for _, n := range s.Sentinels[1:] {
		u += "&addr=" + n.Addr()
	}
	return u
}

// WaitReady waits until every sentinel knows a replica in sync with the
// master (none down) and both other sentinels. After a failover, call it
// before the next: the demoted master takes a while to become a replica in
// sync, and what the new master stored before is lost with it otherwise.
func (s *Sentinel) WaitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	ready := func() error {
		for _, n := range s.Sentinels {
			m, err := n.do("SENTINEL", "MASTER", SentinelMaster)
			if err != nil {
				return err
			}
			if f := fields(m); f["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel %s sees %s other sentinels", n.Addr(), f["num-other-sentinels"])
			}
			v, err := n.do("SENTINEL", "REPLICAS", SentinelMaster)
			if err != nil {
				return err
			}
			reps, _ := v.([]any)
			if len(reps) != 1 {
				return fmt.Errorf("sentinel %s sees %d replicas", n.Addr(), len(reps))
			}
			if f := fields(reps[0]); f["flags"] != "slave" || f["master-link-status"] != "ok" {
				return fmt.Errorf("sentinel %s: replica %s flags %q, link %q", n.Addr(), f["name"], f["flags"], f["master-link-status"])
			}
		}
		return nil
	}
	for {
		err := ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sentinel setup not ready within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Failover asks the sentinels for a failover, as an operator does before
// maintenance of the master (SENTINEL FAILOVER): once the replica is in
// sync, it is promoted and the old master demoted. It returns the new
// master. (A master stopped by the test takes the sentinels a while to
// reconfigure as a replica after its restart: fail over by hand first.)
func (s *Sentinel) Failover() *Server {
	s.t.Helper()
	s.WaitReady()
	old := s.Master()
	if _, err := s.Sentinels[0].do("SENTINEL", "FAILOVER", SentinelMaster); err != nil {
		s.t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	return s.WaitFailover(old)
}

// Master is the data node the sentinels name as master now.
func (s *Sentinel) Master() *Server {
	s.t.Helper()
	for _, n := range s.Sentinels {
		v, err := n.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		if err != nil {
			continue
		}
		if a, ok := v.([]any); ok && len(a) == 2 {
			for _, d := range s.Data {
				if fmt.Sprint(a[1]) == strconv.Itoa(d.Port) {
					return d
				}
			}
		}
	}
	s.t.Fatal("no sentinel names a known master")
	return nil
}

// WaitFailover waits until every sentinel names a master other than old and
// that node has taken the master role, and returns it.
func (s *Sentinel) WaitFailover(old *Server) *Server {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := s.Master(); m != old && s.agree(m) {
			if role, err := m.do("ROLE"); err == nil {
				if r, ok := role.([]any); ok && len(r) > 0 && r[0] == "master" {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatal("no failover within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agree reports whether every sentinel names m as master.
func (s *Sentinel) agree(m *Server) bool {
	for _, n := range s.Sentinels {
		v, err := n.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		a, ok := v.([]any)
		if err != nil || !ok || len(a) != 2 || fmt.Sprint(a[1]) != strconv.Itoa(m.Port) {
			return false
		}
	}
	return true
}

// fields reads a RESP2 flat list of name, value pairs.
func fields(v any) map[string]string {
	out := map[string]string{}
	a, _ := v.([]any)
	for i := 0; i+1 < len(a); i += 2 {
		out[fmt.Sprint(a[i])] = fmt.Sprint(a[i+1])
	}
	return out
}
