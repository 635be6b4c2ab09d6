package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisDeploy is a Redis the Redis-backed scenarios share: one
// redis-server, or a Redis Cluster of clusterMasters masters. Its processes
// are pinned with the servers: they are part of what the gateway costs.
type redisDeploy struct {
	url string
	// clients, one per node, read the command counts; reads is how many
	// INFO commands each node has answered so far.
	clients []*redis.Client
	reads   int64
}

// clusterMasters is the size of the benchmark's Redis Cluster: the
// smallest Redis allows.
const clusterMasters = 3

// redisFor returns the URL of the single redis-server (cluster false) or of
// the Redis Cluster, starting it on first use.
func (e *env) redisFor(ctx context.Context, cluster bool) (string, error) {
	d := &e.redisSingle
	if cluster {
		d = &e.redisCluster
	}
	if *d != nil {
		return (*d).url, nil
	}
	var err error
	if cluster {
		*d, err = e.startRedisCluster(ctx)
	} else {
		var addr string
		if addr, err = e.startRedisNode(ctx, "redis"); err == nil {
			*d = &redisDeploy{url: "redis://" + addr, clients: []*redis.Client{redis.NewClient(&redis.Options{Addr: addr})}}
		}
	}
	if err != nil {
		return "", err
	}
	return (*d).url, nil
}

// startRedisNode starts one redis-server named name (no persistence) with
// more arguments, waits until it accepts connections and returns its
// address.
func (e *env) startRedisNode(ctx context.Context, name string, args ...string) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is %w (apt-get install -y redis-server)", errNotInstalled)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	argv := append([]string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", dir}, args...)
	p, err := e.procs.start(name, dir, argv...)
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr, nil
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("%s did not start: %s", name, p.stderrTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRedisCluster starts clusterMasters cluster-enabled redis-servers,
// joins them with redis-cli --cluster create (no replicas) and waits until
// every node serves every slot.
func (e *env) startRedisCluster(ctx context.Context) (*redisDeploy, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is %w (apt-get install -y redis-tools)", errNotInstalled)
	}
	d := &redisDeploy{}
	var addrs []string
	for i := range clusterMasters {
		bus, err := freePort()
		if err != nil {
			return nil, err
		}
		addr, err := e.startRedisNode(ctx, "rediscluster-"+strconv.Itoa(i), "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-port", strconv.Itoa(bus))
		if err != nil {
			return nil, err
		}
		addrs = append(addrs, addr)
		d.clients = append(d.clients, redis.NewClient(&redis.Options{Addr: addr}))
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, lastLines(string(out), 3))
	}
	for _, c := range d.clients {
		for {
			info, err := c.ClusterInfo(cctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(clusterMasters)) {
				break
			}
			if cctx.Err() != nil {
				return nil, errors.New("redis cluster not healthy within a minute")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	d.url = "redis+cluster://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	return d, nil
}

// commands counts the commands the deployment's nodes have processed, less
// the INFO commands that read them, so the difference of two reads is what
// the gateways sent in between (only the scenario being measured is busy
// then). 0 if a node does not answer.
func (d *redisDeploy) commands() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var total int64
	for _, c := range d.clients {
		info, err := c.Info(ctx, "stats").Result()
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	d.reads++
	return total - d.reads*int64(len(d.clients)) + int64(len(d.clients))
}

// redisCounter is the command counter of the scenarios on the single
// redis-server (cluster false) or on the cluster.
func (e *env) redisCounter(cluster bool) *counter {
	return &counter{what: "redis commands", read: func() int64 {
		d := e.redisSingle
		if cluster {
			d = e.redisCluster
		}
		if d == nil {
			return 0
		}
		return d.commands()
	}}
}

func (e *env) closeRedis() {
	for _, d := range []*redisDeploy{e.redisSingle, e.redisCluster} {
		if d != nil {
			for _, c := range d.clients {
				_ = c.Close()
			}
		}
	}
}
