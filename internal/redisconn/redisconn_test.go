package redisconn

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authgateway/authgateway/internal/testutil/poll"
	"github.com/authgateway/authgateway/internal/testutil/redistest"
)

func TestNewForms(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		wantKind string // "single", "cluster", "sentinel"
		wantAddr []string
		wantDB   int
		wantTLS  bool
	}{
		{"single", "redis://localhost:6380/2", "single", []string{"localhost:6380"}, 2, false},
		{"single default port", "redis://cache", "single", []string{"cache:6379"}, 0, false},
		{"single tls", "rediss://u:p@cache:6380", "single", []string{"cache:6380"}, 0, true},
		{"cluster scheme", "redis+cluster://a:7000?addr=b:7001", "cluster", []string{"a:7000", "b:7001"}, 0, false},
		{"cluster scheme one seed", "redis+cluster://a:7000", "cluster", []string{"a:7000"}, 0, false},
		{"cluster tls", "rediss+cluster://a:7000/0", "cluster", []string{"a:7000"}, 0, true},
		{"cluster by addrs", "redis://a:7000?addr=b:7001&addr=c:7002", "cluster", []string{"a:7000", "b:7001", "c:7002"}, 0, false},
		{"sentinel", "redis+sentinel://s1:26380/3?master_name=mymaster&addr=s2:26381", "sentinel", []string{"s1:26380", "s2:26381"}, 3, false},
		{"sentinel default port", "redis+sentinel://s1?master_name=m", "sentinel", []string{"s1:26379"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url)
			if err != nil {
				t.Fatalf("New(%q): %v", tt.url, err)
			}
			t.Cleanup(func() { _ = c.Close() })
			var (
				addrs                  []string
				db                     int
				tls                    bool
				dial, read, write      time.Duration
				pool, retries, dialAtt int
			)
			kind := "single"
			switch c := c.(type) {
			case *redis.Client:
				o := c.Options()
				if o.Addr == "FailoverClient" {
					kind = "sentinel"
					// The sentinel addresses are not exposed by *Client; the
					// parse is checked by the sentinel integration test.
					addrs = tt.wantAddr
				} else {
					addrs = []string{o.Addr}
				}
				db, tls = o.DB, o.TLSConfig != nil
				dial, read, write, pool, retries, dialAtt = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize, o.MaxRetries, o.DialerRetries
			case *redis.ClusterClient:
				kind = "cluster"
				o := c.Options()
				addrs, tls = o.Addrs, o.TLSConfig != nil
				dial, read, write, pool, retries, dialAtt = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolSize, o.MaxRetries, o.DialerRetries
			default:
				t.Fatalf("client type %T", c)
			}
			if kind != tt.wantKind {
				t.Errorf("kind = %s; want %s", kind, tt.wantKind)
			}
			if fmt.Sprint(addrs) != fmt.Sprint(tt.wantAddr) {
				t.Errorf("addrs = %v; want %v", addrs, tt.wantAddr)
			}
			if db != tt.wantDB {
				t.Errorf("db = %d; want %d", db, tt.wantDB)
			}
			if tls != tt.wantTLS {
				t.Errorf("tls = %v; want %v", tls, tt.wantTLS)
			}
			if dial != DefaultDialTimeout || read != DefaultReadTimeout || write != DefaultWriteTimeout {
				t.Errorf("timeouts dial/read/write = %v/%v/%v; want %v/%v/%v", dial, read, write,
					DefaultDialTimeout, DefaultReadTimeout, DefaultWriteTimeout)
			}
			if pool < defaultMinPoolSize {
				t.Errorf("pool size = %d; want >= %d", pool, defaultMinPoolSize)
			}
			if retries != defaultMaxRetries || dialAtt != defaultDialAttempts {
				t.Errorf("retries/dial attempts = %d/%d; want %d/%d", retries, dialAtt, defaultMaxRetries, defaultDialAttempts)
			}
		})
	}
}

func TestNewURLOptionsWin(t *testing.T) {
	c, err := New("redis://localhost:6379?dial_timeout=3s&read_timeout=1s&pool_size=7&max_retries=-1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.DialTimeout != 3*time.Second || o.ReadTimeout != time.Second || o.PoolSize != 7 {
		t.Errorf("got dial %v read %v pool %d; want 3s 1s 7", o.DialTimeout, o.ReadTimeout, o.PoolSize)
	}
	if o.MaxRetries != 0 { // -1 in the URL means "no retries"; go-redis stores 0
		t.Errorf("max retries = %d; want 0 (disabled)", o.MaxRetries)
	}
}

// TestNewErrorsHidePassword attacks the rule that errors never carry the
// password, with every kind of error New can return.
func TestNewErrorsHidePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	tests := []struct {
		name string
		url  string
	}{
		{"unparsable", "redis://:" + secret + "@host:port\x7f"},
		{"bad port", "redis://u:" + secret + "@host:notaport"},
		{"bad scheme", "http://u:" + secret + "@host:6379"},
		{"bad mode", "redis+ring://u:" + secret + "@host:6379"},
		{"unknown option", "redis://u:" + secret + "@host:6379?bogus=1"},
		{"bad db", "redis://u:" + secret + "@host:6379/notadb"},
		{"cluster bad option", "redis+cluster://u:" + secret + "@host:6379?bogus=" + secret},
		{"cluster with db", "redis+cluster://u:" + secret + "@host:6379/3"},
		{"sentinel without master", "redis+sentinel://u:" + secret + "@host:26379"},
		{"sentinel password in query", "redis+sentinel://host:26379?master_name=m&password=" + secret},
		{"sentinel bad option", "redis+sentinel://host:26379?master_name=m&sentinel_password=" + secret + "&bogus=1"},
		{"escaped password", "redis://u:" + strings.ReplaceAll(secret, "-", "%2D") + "@host:6379?bogus=1"},
		{"no host", "redis://u:" + secret + "@/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url)
			if err == nil {
				_ = c.Close()
				t.Fatalf("New(%q) succeeded; want an error", tt.url)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestNewSingleNodeRealRedis(t *testing.T) {
	s := redistest.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer admin.Close()
	const secret = "correct-horse"
	if err := admin.ConfigSet(ctx, "requirepass", secret).Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("right password", func(t *testing.T) {
		c, err := New("redis://:" + secret + "@" + s.Addr() + "/1")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
			t.Fatalf("GET = %q, %v; want v", got, err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		c, err := New("redis://:wrong-" + secret + "@" + s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.Ping(ctx).Err()
		if err == nil {
			t.Fatal("PING with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains the password", err)
		}
	})
}

func TestNewClusterRealRedis(t *testing.T) {
	bin := redisBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	startProcess(t, dir, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--save", "", "--appendonly", "no", "--dir", dir)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitPing(t, addr)

	// A one-node cluster that owns every slot is a real cluster to a client.
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	poll.True(t, 10*time.Second, "cluster_state:ok", func() bool {
		info, err := admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})

	for _, u := range []string{"redis+cluster://" + addr, "redis://" + addr + "?addr=" + addr} {
		t.Run(u, func(t *testing.T) {
			c, err := New(u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.(*redis.ClusterClient); !ok {
				t.Fatalf("client type %T; want *redis.ClusterClient", c)
			}
			for i := range 20 { // keys spread over many slots
				k := fmt.Sprintf("key-%d", i)
				if err := c.Set(ctx, k, i, 0).Err(); err != nil {
					t.Fatalf("SET %s: %v", k, err)
				}
				if got, err := c.Get(ctx, k).Int(); err != nil || got != i {
					t.Fatalf("GET %s = %d, %v; want %d", k, got, err, i)
				}
			}
		})
	}
}

func TestNewSentinelRealRedis(t *testing.T) {
	bin := redisBinary(t)
	master := redistest.Start(t)
	ctx := context.Background()
	const secret = "sentinel-and-master"
	admin := redis.NewClient(&redis.Options{Addr: master.Addr()})
	defer admin.Close()
	if err := admin.ConfigSet(ctx, "requirepass", secret).Err(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	sport := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %s\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel auth-pass mymaster %s\n",
		sport, dir, secret, master.Port, secret)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, dir, bin, conf, "--sentinel")
	saddr := "127.0.0.1:" + strconv.Itoa(sport)
	poll.Until(t, 10*time.Second, "sentinel listening", func() error {
		c, err := net.DialTimeout("tcp", saddr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err
	})

	c, err := New("redis+sentinel://:" + secret + "@" + saddr + "?master_name=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The sentinel may need a moment before it answers for the master.
	poll.Until(t, 10*time.Second, "SET through the sentinel", func() error { return c.Set(ctx, "k", "via-sentinel", 0).Err() })
	if got, err := admin.Get(ctx, "k").Result(); err != nil || got != "via-sentinel" {
		t.Fatalf("master GET k = %q, %v; want via-sentinel", got, err)
	}
}

func redisBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("AUTHGATEWAY_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found: %v", err)
		}
		t.Skip("redis-server not installed")
	}
	return bin
}

func startProcess(t *testing.T, dir, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logf.Close()
	})
}

func waitPing(t *testing.T, addr string) {
	t.Helper()
	poll.True(t, 10*time.Second, "PING "+addr, func() bool { return redistest.Ping(addr) })
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
