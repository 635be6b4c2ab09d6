// Command benchtool is the load harness behind `make bench`. It measures the
// gateway side by side with a bare httputil.ReverseProxy (same Transport) and
// nginx, in one run, on loopback only; see bench/README.md.
//
//	benchtool run       [-gateway bin/authgateway] [-out bench/results.md]   the whole benchmark
//	benchtool upstream  -listen ADDR                       the tiny upstream (fixed ~100 B body)
//	benchtool bareproxy -listen ADDR -upstream URL         the baseline proxy
//	benchtool fixedrate -target SPEC -rate R ...           an open-loop, fixed-rate load generator
//	benchtool closedloop -target SPEC -conns N -duration D a closed loop keeping session cookies
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: benchtool <command> [flags]

commands:
  run        run every scenario and write the results (what make bench does)
  upstream   serve a fixed ~100 B body
  bareproxy  a bare httputil.ReverseProxy with the gateway's transport
  fixedrate  send requests at a fixed rate, print latency percentiles as JSON
  closedloop wrk's closed loop in Go, for login sessions (keeps the cookies set)

environment for run: ROUNDS (3), DURATION (5s), WARMUP (1s), FIXED_DURATION (2s), CONNS (64),
  RSS_CONNS (1000), MISS_TOKENS (30000), SCENARIOS (comma-separated names; default: all
  non-optional; "all" adds the optional ones).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(ctx, args, stdout, stderr)
	case "upstream":
		err = cmdUpstream(ctx, args)
	case "bareproxy":
		err = cmdBareProxy(ctx, args)
	case "fixedrate":
		err = cmdFixedRate(ctx, args, stdout)
	case "closedloop":
		err = cmdClosedLoop(ctx, args, stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "benchtool: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "benchtool %s: %v\n", cmd, err)
		return 1
	}
	return 0
}
