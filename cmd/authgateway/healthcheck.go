package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/authgateway/authgateway/internal/config"
)

// cmdHealthcheck asks the admin listener's /healthz (for container health
// checks in images without curl): exit 0 if it answers 200.
func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("healthcheck", stderr)
	url := fs.String("url", "", "health URL (default: /healthz on server.admin_listen)")
	if _, err := parseInterleaved(fs, args); err != nil {
		return exitUsage
	}
	target := *url
	if target == "" {
		admin, err := config.AdminListen(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "authgateway healthcheck: %v\n", err)
			return exitFailure
		}
		if admin == "" {
			fmt.Fprintln(stderr, "authgateway healthcheck: server.admin_listen is disabled; pass -url")
			return exitFailure
		}
		host, port, err := net.SplitHostPort(admin)
		if err != nil {
			fmt.Fprintf(stderr, "authgateway healthcheck: %v\n", err)
			return exitFailure
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		target = "http://" + net.JoinHostPort(host, port) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway healthcheck: %v\n", err)
		return exitUsage
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway healthcheck: %v\n", err)
		return exitFailure
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "authgateway healthcheck: %s\n", resp.Status)
		return exitFailure
	}
	fmt.Fprintln(stdout, "ok")
	return exitOK
}
