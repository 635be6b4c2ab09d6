// Command authgateway is an authentication reverse proxy: see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/authgateway/authgateway/internal/config"
	"github.com/authgateway/authgateway/internal/gcfloor"
	"github.com/authgateway/authgateway/internal/server"
)

const usage = `usage: authgateway <command> [flags]

commands:
  serve    [-config PATH]                 run the gateway (default command)
  validate [-config PATH]                 check a config; print PATH:LINE: message per problem
  explain  [-config PATH] METHOD URL [-H "Name: value"]... [-ip ADDR] [-json]
                                          the gateway's decision on a request; counts nothing
  keys create -name N [-prefix P] [-roles a,b] [-scopes x,y] [-expires 90d]
  keys list | revoke ID | rotate ID [-grace 24h] | migrate [ID...] [-dry-run]   (all take [-strategy S])
  sessions list -sub S | revoke -sub S   browser sessions of a subject; revoke ends them on every replica
  token -sub S [-email E] [-roles a,b] [-scopes x,y] [-ttl 15m]
                                          mint an access token (dev/testing)
  htpasswd -user NAME [-cost 12]        print an htpasswd line (bcrypt) for a basic strategy;
                                          the password is read from stdin
  healthcheck [-url URL]                  exit 0 if the admin /healthz answers 200 (container health checks)
  version

-config defaults to $AUTHGATEWAY_CONFIG, then configs/gateway.yaml.
`

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-version" || a == "--version" || a == "-h" || a == "-help" || a == "--help":
			cmd, args = a, args[1:]
		case !strings.HasPrefix(a, "-"):
			cmd, args = a, args[1:]
		}
	}
	switch cmd {
	case "serve":
		return cmdServe(ctx, args, stdout, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "token":
		return cmdToken(args, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, args, stdout, stderr)
	case "explain":
		return cmdExplain(ctx, args, stdout, stderr)
	case "sessions":
		return cmdSessions(ctx, args, stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, args, stdout, stderr)
	case "htpasswd":
		return cmdHtpasswd(args, os.Stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "authgateway: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// defaultConfig is the config read without -config or $AUTHGATEWAY_CONFIG.
const defaultConfig = "configs/gateway.yaml"

// newFlags returns a flag set with -config, printing errors to stderr.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("authgateway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("AUTHGATEWAY_CONFIG")
	if def == "" {
		def = defaultConfig
	}
	return fs, fs.String("config", def, "config file (default $AUTHGATEWAY_CONFIG, then "+defaultConfig+")")
}

// parseInterleaved parses flags that may come before or after positional
// arguments ("keys rotate ID -grace 24h" == "keys rotate -grace 24h ID").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// loadConfig loads and validates; problems are printed one per line.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		var errs config.Errors
		switch {
		case errors.As(err, &errs):
			for _, p := range errs {
				fmt.Fprintln(stderr, p.String())
			}
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stderr, "%s: no such config file (%s); the config is -config PATH, else $AUTHGATEWAY_CONFIG, else %s\n",
				path, configSource(path), defaultConfig)
		default:
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
		}
		return nil, false
	}
	return cfg, true
}

// configSource says where a config path came from, for the message about a
// missing file.
func configSource(path string) string {
	from := "named by -config"
	if env, ok := os.LookupEnv("AUTHGATEWAY_CONFIG"); ok && env == path {
		from = "named by $AUTHGATEWAY_CONFIG"
	} else if path == defaultConfig {
		from = "the default"
	}
	if !filepath.IsAbs(path) {
		if wd, err := os.Getwd(); err == nil {
			from += ", relative to the working directory " + wd
		}
	}
	return from
}

func printBuildError(stderr io.Writer, path string, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, p := range errs {
			fmt.Fprintln(stderr, p.String())
		}
		return
	}
	fmt.Fprintf(stderr, "%s: %v\n", path, err)
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("serve", stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) > 0 {
		if err == nil {
			fmt.Fprintf(stderr, "authgateway serve: unexpected argument %q\n", pos[0])
		}
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	logOut := server.NewLogWriter(stdout)
	defer logOut.Close()
	logger := server.NewLogger(cfg.Log, logOut)
	for _, w := range cfg.Warnings() {
		logger.Warn(w.Message, "key", w.Path, "line", w.Line)
		fmt.Fprintln(stderr, w.String())
	}
	// Fewer collections under load, the same peak heap (see gcfloor).
	defer startGCFloor(cfg.Server.GCHeapFloor, logger).Stop()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	app, err := server.Build(ctx, cfg, logger, server.WithEventLog(logOut))
	if err != nil {
		printBuildError(stderr, cfg.Path, err)
		return exitFailure
	}
	defer app.Close()
	if err := app.Start(ctx); err != nil {
		printBuildError(stderr, cfg.Path, err)
		return exitFailure
	}
	if err := app.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "authgateway: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("validate", stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil || len(pos) > 0 {
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stdout)
	if !ok {
		return exitFailure
	}
	// Building checks what loading cannot: keys and certificates parse,
	// strategies and the login construct. A dry build dials, starts and
	// writes nothing.
	app, err := server.Build(context.Background(), cfg, server.NewLogger(cfg.Log, io.Discard), server.DryRun())
	if err != nil {
		printBuildError(stdout, cfg.Path, err)
		return exitFailure
	}
	app.Close()
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(stdout, w.String())
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, %d strategies)\n", cfg.Path, len(cfg.Routes), len(cfg.Strategies))
	return exitOK
}

// startGCFloor starts the heap goal floor of server.gc_heap_floor, unless
// it is 0 or GOGC is set (the operator's setting wins), and says which.
func startGCFloor(floor int64, logger *slog.Logger) *gcfloor.Tuner {
	t := gcfloor.Start(uint64(max(floor, 0)))
	_, gogc := os.LookupEnv("GOGC")
	switch {
	case t != nil:
		logger.Info("gc heap floor on", "server.gc_heap_floor", floor)
	case gogc:
		logger.Info("gc heap floor off: GOGC is set", "server.gc_heap_floor", floor)
	case floor == 0:
		logger.Info("gc heap floor off", "server.gc_heap_floor", floor)
	default:
		logger.Warn("gc heap floor off: the runtime lacks the metrics it reads", "server.gc_heap_floor", floor)
	}
	return t
}
