package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgateway/authgateway/internal/proxy"
	"github.com/authgateway/authgateway/internal/server"
)

// headerFlags collects repeated -H "Name: value" flags.
type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, "; ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

const explainUsage = `usage: authgateway explain [-config PATH] METHOD URL [-H "Name: value"]... [-ip ADDR] [-json]`

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("explain", stderr)
	var headers headerFlags
	fs.Var(&headers, "H", `request header "Name: value" (repeatable)`)
	asJSON := fs.Bool("json", false, "print JSON")
	clientIP := fs.String("ip", "127.0.0.1", "client address the request comes from")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, explainUsage)
		return exitUsage
	}
	r, err := explainRequest(ctx, pos[0], pos[1], headers, *clientIP)
	if err != nil {
		fmt.Fprintf(stderr, "authgateway explain: %v\n%s\n", err, explainUsage)
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitFailure
	}
	app, err := server.Build(ctx, cfg, server.NewLogger(cfg.Log, io.Discard))
	if err != nil {
		printBuildError(stderr, cfg.Path, err)
		return exitFailure
	}
	defer app.Close()
	ex := app.Gateway.Explain(r)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(ex)
		return exitOK
	}
	printExplanation(stdout, ex)
	return exitOK
}

func explainRequest(ctx context.Context, method, rawURL string, headers []string, ip string) (*http.Request, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("URL %q: want a path or an http(s) URL", rawURL)
	}
	// The request-target as a client would send it: the URL's path and
	// query, exactly as written (no cleaning), so path tricks can be explained.
	target := rawURL
	if u.Scheme != "" {
		target = strings.TrimPrefix(rawURL, u.Scheme+"://"+u.Host)
	}
	if target == "" {
		target = "/"
	}
	r, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), "http://gateway/", nil)
	if err != nil {
		return nil, err
	}
	r.RequestURI = target
	r.Host = u.Host
	if r.Host == "" {
		r.Host = "localhost"
	}
	r.RemoteAddr = ip + ":0"
	if strings.Contains(ip, ":") {
		r.RemoteAddr = "[" + ip + "]:0"
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf(`-H %q: want "Name: value"`, h)
		}
		r.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return r, nil
}

func printExplanation(w io.Writer, ex *proxy.Explanation) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("request:   %s %s", ex.Method, ex.RequestTarget)
	if ex.PathError != "" {
		p("path:      refused: %s", ex.PathError)
	} else if ex.Path != ex.RequestTarget {
		p("path:      %s (canonical form; routed and forwarded as this)", ex.Path)
	}
	if ex.Route != "" {
		p("route:     %s (prefix %s)", ex.Route, ex.RoutePrefix)
	} else if ex.PathError == "" {
		p("route:     none")
	}
	for _, m := range ex.OtherRoutes {
		p("  not %-14s %-20s %s", m.Route, m.Prefix, m.Why)
	}
	if ex.Public {
		p("auth:      public route: no authentication, X-Auth-* headers stripped")
	}
	for i, s := range ex.Strategies {
		line := fmt.Sprintf("  %d. %-12s %s", i+1, s.Name, s.Result)
		if s.Reason != "" && s.Reason != s.Result {
			line += " (" + s.Reason + ")"
		}
		if i == 0 {
			p("strategies:")
		}
		p("%s", line)
	}
	if ex.Identity != nil {
		id := ex.Identity
		p("identity:  subject=%s email=%s strategy=%s roles=[%s] scopes=[%s] client_id=%s", id.Subject, orDash(id.Email), id.Strategy,
			strings.Join(id.Roles, ","), strings.Join(id.Scopes, " "), orDash(id.ClientID))
	}
	if len(ex.RolesRequired) > 0 || len(ex.ScopesRequired) > 0 {
		p("requires:  roles any of [%s], scopes all of [%s]: %s", strings.Join(ex.RolesRequired, ","), strings.Join(ex.ScopesRequired, " "), orDash(ex.Authorization))
	}
	if ex.RateLimit != "" {
		p("limit:     %s", ex.RateLimit)
	}
	status := "-"
	if ex.Status != 0 {
		status = fmt.Sprintf("%d %s", ex.Status, http.StatusText(ex.Status))
	}
	p("decision:  %s: %s", status, ex.Decision)
	if ex.UpstreamURL != "" {
		p("upstream:  %s %s", ex.Method, ex.UpstreamURL)
		p("headers the upstream would get:")
		for _, name := range proxy.SortedHeaderNames(ex.UpstreamHeaders) {
			p("  %s: %s", name, ex.UpstreamHeaders[name])
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var _ flag.Value = (*headerFlags)(nil)
